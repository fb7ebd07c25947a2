#include "CGitSocket.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    git_stream parent;
    char *host;
    char *port;
    int fd;
} quick_socket;

static int connect_timeout = 30000;
static int stall_timeout = 120000;

static void fail(const char *what, const quick_socket *s, const char *reason) {
    char message[600];
    snprintf(message, sizeof message, "%s %s:%s: %s", what, s->host, s->port, reason);
    git_error_set_str(GIT_ERROR_NET, message);
}

/* Waits until `fd` is ready for `events`: 1 when it is, 0 after `timeout_ms`, -1 on error. */
static int wait_for(int fd, short events, int timeout_ms) {
    struct pollfd entry = {.fd = fd, .events = events};
    for (;;) {
        int ready = poll(&entry, 1, timeout_ms);
        if (ready < 0 && errno == EINTR) continue;
        return ready;
    }
}

static void acknowledge_now(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

static int quick_connect(git_stream *stream) {
    quick_socket *s = (quick_socket *)stream;
    struct addrinfo hints = {0}, *found = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int resolved = getaddrinfo(s->host, s->port, &hints, &found);
    if (resolved != 0) {
        fail("failed to resolve", s, gai_strerror(resolved));
        return -1;
    }
    int last = ECONNREFUSED;
    int timed_out = 0;
    for (struct addrinfo *address = found; address; address = address->ai_next) {
        int fd = socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, address->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, address->ai_addr, address->ai_addrlen) < 0) {
            if (errno != EINPROGRESS) {
                last = errno;
                close(fd);
                continue;
            }
            int ready = wait_for(fd, POLLOUT, connect_timeout);
            int error = 0;
            socklen_t length = sizeof error;
            if (ready <= 0) {
                last = ready == 0 ? ETIMEDOUT : errno;
                timed_out = ready == 0;
                close(fd);
                continue;
            }
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0 || error != 0) {
                last = error ? error : errno;
                close(fd);
                continue;
            }
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        acknowledge_now(fd);
        s->fd = fd;
        freeaddrinfo(found);
        return 0;
    }
    freeaddrinfo(found);
    if (timed_out) {
        char reason[64];
        snprintf(reason, sizeof reason, "no answer in %d s", connect_timeout / 1000);
        fail("failed to connect to", s, reason);
    } else {
        fail("failed to connect to", s, strerror(last));
    }
    return -1;
}

static ssize_t quick_read(git_stream *stream, void *data, size_t length) {
    quick_socket *s = (quick_socket *)stream;
    for (;;) {
        ssize_t count = recv(s->fd, data, length, 0);
        if (count >= 0) {
            acknowledge_now(s->fd);
            return count;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            fail("could not read from", s, strerror(errno));
            return -1;
        }
        int ready = wait_for(s->fd, POLLIN, stall_timeout);
        if (ready == 0) {
            char reason[64];
            snprintf(reason, sizeof reason, "nothing received for %d s", stall_timeout / 1000);
            fail("gave up on", s, reason);
            return -1;
        }
        if (ready < 0) {
            fail("could not read from", s, strerror(errno));
            return -1;
        }
    }
}

static ssize_t quick_write(git_stream *stream, const char *data, size_t length, int flags) {
    (void)flags;
    quick_socket *s = (quick_socket *)stream;
    for (;;) {
        ssize_t count = send(s->fd, data, length, MSG_NOSIGNAL);
        if (count >= 0) return count;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            fail("could not write to", s, strerror(errno));
            return -1;
        }
        int ready = wait_for(s->fd, POLLOUT, stall_timeout);
        if (ready <= 0) {
            fail("could not write to", s, ready == 0 ? "it takes nothing in" : strerror(errno));
            return -1;
        }
    }
}

static int quick_close(git_stream *stream) {
    quick_socket *s = (quick_socket *)stream;
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    return 0;
}

static void quick_free(git_stream *stream) {
    quick_socket *s = (quick_socket *)stream;
    quick_close(stream);
    free(s->host);
    free(s->port);
    free(s);
}

static int quick_init(git_stream **out, const char *host, const char *port) {
    quick_socket *s = calloc(1, sizeof *s);
    if (!s || !(s->host = strdup(host)) || !(s->port = strdup(port))) {
        if (s) free(s->host);
        free(s);
        git_error_set_oom();
        return -1;
    }
    s->fd = -1;
    s->parent.version = GIT_STREAM_VERSION;
    s->parent.connect = quick_connect;
    s->parent.read = quick_read;
    s->parent.write = quick_write;
    s->parent.close = quick_close;
    s->parent.free = quick_free;
    *out = &s->parent;
    return 0;
}

int pipeline_git_socket_use(int enabled, int connect_timeout_ms, int stall_timeout_ms) {
    if (!enabled) return git_stream_register(GIT_STREAM_STANDARD, NULL);
    connect_timeout = connect_timeout_ms > 0 ? connect_timeout_ms : 30000;
    stall_timeout = stall_timeout_ms > 0 ? stall_timeout_ms : 120000;
    git_stream_registration registration = {.version = GIT_STREAM_VERSION, .init = quick_init, .wrap = NULL};
    return git_stream_register(GIT_STREAM_STANDARD, &registration);
}
