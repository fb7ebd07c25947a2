#define _GNU_SOURCE
#include "CSpawn.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * The stage server: one single-threaded process per run that has already loaded the executable and its libraries
 * and forks a child per built-in stage, so that a stage costs a fork instead of an exec (loading some forty shared
 * libraries and relocating the Swift runtime cost a new `pipeline` process about 18 ms of CPU each time).
 *
 * The runner talks to it over a stream socket on the server's stdin:
 *   request:  u32 magic, u32 length, with three descriptors (the stage's stdin, stdout, stderr) as SCM_RIGHTS,
 *             then `length` bytes: NUL-terminated strings DIRECTORY, RUN_FOLDER, STAGE, then NAME=VALUE ones.
 *   replies:  three i32 each (kind, pid, value), in this order for every request: STARTED (pid) or FAILED (errno);
 *             later, EXITED (pid, exit status or 128 + signal) for every child that was STARTED.
 * The server ends when the runner closes its end (or dies: the server has PR_SET_PDEATHSIG); its children get
 * SIGKILL when it ends, as a stage process gets when its runner dies.
 */

/* Writes all of `bytes` to `socket`, without SIGPIPE when the other end is gone (EPIPE instead). */
static int send_all(int socket, const void *bytes, size_t length) {
    const char *at = bytes;
    while (length > 0) {
        ssize_t sent = send(socket, at, length, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        at += sent;
        length -= (size_t)sent;
    }
    return 0;
}

static int read_all(int fd, void *bytes, size_t length) {
    char *at = bytes;
    while (length > 0) {
        ssize_t got = read(fd, at, length);
        if (got < 0 && errno == EINTR) continue;
        if (got == 0) errno = EPIPE;
        if (got <= 0) return -1;
        at += got;
        length -= (size_t)got;
    }
    return 0;
}

static int reply(int socket, int32_t kind, int32_t pid, int32_t value) {
    int32_t message[3] = {kind, pid, value};
    return send_all(socket, message, sizeof message);
}

/* Reads one request's header and descriptors; 1 when one came, 0 at the end of the stream, -1 on an error. */
static int receive_header(int socket, uint32_t header[2], int fds[3]) {
    union {
        char buffer[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec vector = {.iov_base = header, .iov_len = 2 * sizeof(uint32_t)};
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer};
    ssize_t got;
    do {
        got = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    } while (got < 0 && errno == EINTR);
    if (got == 0) return 0;
    if (got < 0) return -1;
    int received = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int *given = (int *)CMSG_DATA(c);
            for (size_t i = 0; i < count; i++) {
                if (received < 3) fds[received++] = given[i];
                else close(given[i]);
            }
        }
    }
    if ((size_t)got < 2 * sizeof(uint32_t) &&
        read_all(socket, (char *)header + got, 2 * sizeof(uint32_t) - (size_t)got) != 0) {
        for (int i = 0; i < received; i++) close(fds[i]);
        return -1;
    }
    if (header[0] != PIPELINE_STAGE_SERVER_MAGIC) {
        for (int i = 0; i < received; i++) close(fds[i]);
        return -1;
    }
    /* Fewer than three descriptors (out of descriptors here: MSG_CTRUNC): the request is still read whole, and
       refused. */
    for (int i = received; i < 3; i++) fds[i] = -1;
    return 1;
}

/* The number of threads of this process (field 20 of /proc/self/stat), or -1 when unknown. */
static long thread_count(void) {
    char text[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t got = read(fd, text, sizeof text - 1);
    close(fd);
    if (got <= 0) return -1;
    text[got] = 0;
    char *at = strrchr(text, ')');
    if (!at) return -1;
    /* From ")": the space before field 3 (the state), then before each next field up to 20. */
    for (int field = 3; field <= 20 && at; field++) at = strchr(at + 1, ' ');
    return at ? strtol(at + 1, NULL, 10) : -1;
}

static void report_exits(int socket) {
    int status;
    pid_t child;
    while ((child = waitpid(-1, &status, WNOHANG)) > 0) {
        int32_t code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (reply(socket, PIPELINE_STAGE_EXITED, child, code) != 0) _exit(0);
    }
}

/* In the new child: becomes the stage process (own process group, killed with the server, default signals, the
   given descriptors, directory and environment) and runs it; does not return. The server checked the directory
   before forking; should a step here fail all the same, the child says so on the stage's stderr and exits 127, as a
   shell does for a program it cannot start. */
static void become_stage(pid_t server, int fds[3], char *directory, char *folder, char *stage, char **environment,
                         void (*stage_main)(const char *, const char *)) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != server) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    }
    if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[2], 2) < 0 || chdir(directory) != 0) {
        const char *problem = strerror(errno);
        (void)!write(fds[2], "error: the stage could not be started: ", 39);
        (void)!write(fds[2], problem, strlen(problem));
        (void)!write(fds[2], "\n", 1);
        _exit(127);
    }
    clearenv();
    for (char **entry = environment; *entry; entry++) putenv(*entry);
    prctl(PR_SET_NAME, "pipeline-stage"); /* in ps and /proc/PID/comm; its command line stays the server's */
    pipeline_close_from(3);
    stage_main(folder, stage);
    _exit(127);
}

int pipeline_stage_server(int socket, void (*stage_main)(const char *run_folder, const char *stage), void (*idle)(void)) {
    sigset_t children;
    sigemptyset(&children);
    sigaddset(&children, SIGCHLD);
    sigprocmask(SIG_BLOCK, &children, NULL);
    int exits = signalfd(-1, &children, SFD_CLOEXEC);
    if (exits < 0) return errno;
    /* Only the runner ends the server (closing the socket, or dying: PR_SET_PDEATHSIG), never a signal meant for a
       group or a whole service (systemd stopping `pipeline serve`): its death would SIGKILL every stage it forked,
       and a deploy on SIGTERM puts its service back first. The children reset these to the defaults. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    pid_t server = getpid();
    for (;;) {
        struct pollfd watched[2] = {{.fd = socket, .events = POLLIN}, {.fd = exits, .events = POLLIN}};
        /* The first time nothing waits to be served, `idle` runs (once): the first stages are forked first. */
        int ready = 0;
        if (idle) {
            ready = poll(watched, 2, 0);
            if (ready == 0) {
                idle();
                idle = NULL;
            }
        }
        if (ready <= 0 && poll(watched, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (watched[1].revents & POLLIN) {
            struct signalfd_siginfo info;
            (void)!read(exits, &info, sizeof info);
            report_exits(socket);
        }
        if (!(watched[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        uint32_t header[2];
        int fds[3];
        int got = receive_header(socket, header, fds);
        if (got <= 0) return got == 0 ? 0 : EPROTO;
        if (header[1] >= (1u << 30)) return EPROTO;
        char *payload = malloc((size_t)header[1] + 1);
        if (!payload) {
            /* Refused, the stream kept in step: the payload is read and dropped. */
            char sink[4096];
            for (uint32_t left = header[1]; left > 0;) {
                uint32_t part = left < sizeof sink ? left : (uint32_t)sizeof sink;
                if (read_all(socket, sink, part) != 0) return EPROTO;
                left -= part;
            }
            for (int i = 0; i < 3; i++) if (fds[i] >= 0) close(fds[i]);
            if (reply(socket, PIPELINE_STAGE_FAILED, 0, ENOMEM) != 0) return 0;
            continue;
        }
        if (read_all(socket, payload, header[1]) != 0) return EPROTO;
        payload[header[1]] = 0;
        /* DIRECTORY, RUN_FOLDER, STAGE, then the environment: NUL-terminated strings. */
        size_t count = 0;
        for (uint32_t i = 0; i < header[1]; i++) count += payload[i] == 0;
        char **strings = calloc(count + 1, sizeof(char *));
        size_t index = 0;
        for (uint32_t start = 0, i = 0; strings && i < header[1]; i++) {
            if (payload[i] == 0) {
                strings[index++] = payload + start;
                start = i + 1;
            }
        }
        int32_t failure = 0;
        pid_t child = -1;
        struct stat directory;
        if (!strings) failure = ENOMEM;
        else if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0) failure = EMFILE;
        else if (count < 3) failure = EINVAL;
        /* Forking is safe only while this process has one thread: otherwise the runner gives the server up. */
        else if (thread_count() != 1) failure = ENOTSUP;
        else if (stat(strings[0], &directory) != 0) failure = errno;
        else if (!S_ISDIR(directory.st_mode)) failure = ENOTDIR;
        else if (access(strings[0], X_OK) != 0) failure = errno;
        else if ((child = fork()) < 0) failure = errno;
        else if (child == 0) become_stage(server, fds, strings[0], strings[1], strings[2], strings + 3, stage_main);
        if (child > 0) setpgid(child, child); /* the child does the same; whichever runs first wins the race */
        for (int i = 0; i < 3; i++) if (fds[i] >= 0) close(fds[i]);
        free(strings);
        free(payload);
        if (reply(socket, failure ? PIPELINE_STAGE_FAILED : PIPELINE_STAGE_STARTED, failure ? 0 : child, failure) != 0) return 0;
        report_exits(socket);
    }
}

int pipeline_stage_server_send(int socket, const void *payload, uint32_t length, int stdin_fd, int stdout_fd, int stderr_fd) {
    uint32_t header[2] = {PIPELINE_STAGE_SERVER_MAGIC, length};
    union {
        char buffer[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct iovec vector = {.iov_base = header, .iov_len = sizeof header};
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer};
    struct cmsghdr *c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(3 * sizeof(int));
    int fds[3] = {stdin_fd, stdout_fd, stderr_fd};
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    ssize_t sent;
    do {
        sent = sendmsg(socket, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) return errno;
    if ((size_t)sent < sizeof header && send_all(socket, (char *)header + sent, sizeof header - (size_t)sent) != 0) return errno;
    return send_all(socket, payload, length) == 0 ? 0 : errno;
}

int pipeline_stage_server_reply(int socket, int32_t reply_out[3]) {
    return read_all(socket, reply_out, 3 * sizeof(int32_t)) == 0 ? 0 : errno;
}

int pipeline_socketpair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0 ? 0 : errno;
}
