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
#endif
