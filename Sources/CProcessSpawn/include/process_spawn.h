#ifndef NEX_PROCESS_SPAWN_H
#define NEX_PROCESS_SPAWN_H

#include <sys/types.h>

/// How to start a child. Negative limits and fds mean "leave as is" / "/dev/null".
typedef struct {
    /// Put the child in a new process group of its own (setpgid(0, 0)).
    int new_process_group;
    /// Signal the child receives when the spawning *thread* ends (PR_SET_PDEATHSIG); 0 = none.
    int parent_death_signal;
    /// RLIMIT_AS, RLIMIT_NOFILE, RLIMIT_NPROC; < 0 = not changed.
    long long limit_address_space;
    long long limit_open_files;
    long long limit_processes;
    /// File descriptors for the child's stdin/stdout/stderr; < 0 = /dev/null.
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    /// A cgroup.procs file the child writes its pid to before exec; NULL = none.
    const char *cgroup_procs_path;
    /// A second one (cgroup v1 keeps memory and pids in separate hierarchies); NULL = none.
    const char *cgroup_procs_path2;
    /// Close every descriptor above 2 at exec (the parent's sockets must not leak into the child).
    int close_other_descriptors;
    /// The child's working directory (chdir before exec); NULL = this process's.
    const char *working_directory;
} nex_spawn_options;

/// fork + exec with the options applied in the child (only async-signal-safe calls there).
/// Returns 0 and the pid, or an errno: from fork, or from the child's failed setup or exec
/// (reported through a close-on-exec pipe, so "not executable" is known at once).
/// `failed_step` (may be NULL) names the step that failed ("exec", "setrlimit", "cgroup", ...).
int nex_spawn(const char *path, char *const argv[], char *const envp[], const nex_spawn_options *options,
              pid_t *pid_out, const char **failed_step);

/// Marks this process not dumpable (PR_SET_DUMPABLE 0): other processes of the same user, such
/// as its workloads, can no longer read its memory or /proc/<pid>/environ. Returns 0 or errno.
int nex_set_undumpable(void);

/// Makes this process a child subreaper (PR_SET_CHILD_SUBREAPER): orphaned descendants are
/// re-parented to it instead of init, so it can find and kill them. Returns 0 or errno.
int nex_become_subreaper(void);

/// Sets this process's parent-death signal (PR_SET_PDEATHSIG): `signal_number` arrives when
/// the thread that started it ends. Returns 0 or errno.
int nex_set_parent_death_signal(int signal_number);

#endif
