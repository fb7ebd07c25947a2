#ifndef PIPELINE_CSPAWN_H
#define PIPELINE_CSPAWN_H
#include <stddef.h>
#include <sys/types.h>

/// Starts `path` with `argv` and `envp` in `directory`, as the leader of a new process group, with its
/// stdin/stdout/stderr on the given descriptors and every other descriptor closed. The child is killed if the
/// runner dies (PR_SET_PDEATHSIG). Signal dispositions and the signal mask are reset to the defaults.
/// Returns 0 and sets `*pid`, or an errno value (from fork, chdir or execve) when the program did not start.
int pipeline_spawn(const char *_Nonnull path, char *const _Nullable *_Nonnull argv, char *const _Nullable *_Nonnull envp,
                   const char *_Nullable directory, int stdin_fd, int stdout_fd, int stderr_fd, pid_t *_Nonnull pid);

/// Makes `fd` close on exec.
int pipeline_cloexec(int fd);

/// `pipe2(fds, O_CLOEXEC)`.
int pipeline_pipe(int *_Nonnull fds);

/// `memmem`: the first place `needle` occurs in `haystack`, or NULL.
const void *_Nullable pipeline_memmem(const void *_Nonnull haystack, size_t haystack_length,
                                      const void *_Nonnull needle, size_t needle_length);

/// `posix_spawn_file_actions_addclosefrom_np`: the spawned program gets no descriptor from `from` on.
int pipeline_spawn_actions_closefrom(void *_Nonnull actions, int from);

/// Starts `path` in a session of its own (it outlives the caller and its terminal), stdin from /dev/null,
/// stdout and stderr appended to `log`, no other descriptor inherited. Returns its pid, or -1 with errno set.
int pipeline_spawn_detached(const char *_Nonnull path, char *const _Nullable *_Nonnull argv, char *const _Nullable *_Nonnull envp,
                            const char *_Nonnull log);

/// Makes stdout line-buffered (it is a pipe to a stage log: lines must interleave with stderr as they happened).
void pipeline_line_buffered_stdout(void);

#include <stdint.h>

/// The stage server (stage_server.c): the first word of every request.
#define PIPELINE_STAGE_SERVER_MAGIC 0x50535447u
/// Reply kinds: a child started (pid), could not start (errno), ended (pid, exit status or 128 + signal).
#define PIPELINE_STAGE_STARTED 1
#define PIPELINE_STAGE_FAILED 2
#define PIPELINE_STAGE_EXITED 3

/// Serves stage requests on `socket` (see stage_server.c) until the other end closes it, forking a child per
/// request that becomes the stage process and calls `stage_main(run_folder, stage)`, which must not return.
/// `idle`, if given, runs once, the first time no request waits (after the first stages are forked, or before
/// the first request comes). Returns 0 when the other end closed the socket, else an errno value. Call it while
/// the process has one thread.
int pipeline_stage_server(int socket, void (*_Nonnull stage_main)(const char *_Nonnull run_folder, const char *_Nonnull stage),
                          void (*_Nullable idle)(void));

/// Sends one request to a stage server: `payload` (see stage_server.c) with the stage's three descriptors.
/// Returns 0 or an errno value.
int pipeline_stage_server_send(int socket, const void *_Nonnull payload, uint32_t length, int stdin_fd, int stdout_fd, int stderr_fd);

/// Reads one reply (kind, pid, value) from a stage server. Returns 0 or an errno value (EPIPE at its end).
int pipeline_stage_server_reply(int socket, int32_t reply_out[_Nonnull 3]);

/// `socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)`; 0 or an errno value.
int pipeline_socketpair(int fds[_Nonnull 2]);
#endif
