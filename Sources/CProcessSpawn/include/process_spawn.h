#ifndef NEX_PROCESS_SPAWN_H
#define NEX_PROCESS_SPAWN_H

#include <sys/types.h>

/// A path of the host shown inside a sandbox.
typedef struct {
    /// The host path (a directory or a file; symlinks are followed).
    const char *source;
    /// Where it appears inside the sandbox (absolute).
    const char *target;
    /// 0: read-only (and nosuid, nodev); 1: writable.
    int writable;
} nex_sandbox_bind;

/// The Linux sandbox a child starts in (see sandbox.c): new user, pid, mount, ipc and uts
/// namespaces (and network, when asked), one uid and gid of its own, a root file system made
/// of the binds given (read-only unless marked) with a fresh /proc, a minimal /dev and
/// private tmpfs scratch directories, no capabilities, no_new_privs and a seccomp filter.
typedef struct {
    /// The host uid and gid the child runs as; mapped to the same numbers inside.
    uid_t uid;
    gid_t gid;
    /// newuidmap(1) and newgidmap(1) to write the id maps with (a node that is not root and
    /// owns a subordinate id range); NULL: written directly (needs CAP_SETUID/CAP_SETGID).
    const char *newuidmap;
    const char *newgidmap;
    /// A network namespace of its own with only a loopback interface.
    int private_network;
    const char *hostname;
    const nex_sandbox_bind *binds;
    int bind_count;
    /// Private writable tmpfs directories owned by uid/gid, mode 0700 (e.g. /tmp).
    const char *const *scratch;
    int scratch_count;
    /// The size limit of each scratch tmpfs (bytes; also charged to the child's memory cgroup).
    long long scratch_bytes;
    /// Install the seccomp filter (refuses mount, ptrace, bpf, kexec, keyctl, new namespaces, ...).
    int seccomp;
} nex_sandbox;

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
    /// cgroup.procs files the child's pid is written to before exec (cgroup v1 keeps memory,
    /// pids and cpu in separate hierarchies).
    const char *const *cgroup_procs_paths;
    int cgroup_procs_count;
    /// Close every descriptor above 2 at exec (the parent's sockets must not leak into the child).
    int close_other_descriptors;
    /// Descriptors of the parent the child gets as descriptors 3 and 4 (kept open at exec), in
    /// order; the list ends at the first one that is 0-2 or negative (so a zeroed struct passes
    /// nothing).
    int passed_fds[2];
    /// The child's working directory (chdir before exec); NULL = this process's.
    const char *working_directory;
    /// Start the child in this sandbox; NULL = none. The cgroup.procs files are then written
    /// by the parent (with the child's pid as the host sees it) before the child goes on.
    const nex_sandbox *sandbox;
} nex_spawn_options;

/// fork + exec with the options applied in the child (only async-signal-safe calls there).
/// Returns 0 and the pid, or an errno: from fork, or from the child's failed setup or exec
/// (reported through a close-on-exec pipe, so "not executable" is known at once).
/// `failed_step` (may be NULL) names the step that failed ("exec", "setrlimit", "cgroup", ...);
/// `failed_bind` (may be NULL) is the index of the sandbox bind that failed, else -1.
int nex_spawn(const char *path, char *const argv[], char *const envp[], const nex_spawn_options *options,
              pid_t *pid_out, const char **failed_step, int *failed_bind);

/// Marks this process not dumpable (PR_SET_DUMPABLE 0): other processes of the same user, such
/// as its workloads, can no longer read its memory or /proc/<pid>/environ. Returns 0 or errno.
int nex_set_undumpable(void);

/// Makes this process a child subreaper (PR_SET_CHILD_SUBREAPER): orphaned descendants are
/// re-parented to it instead of init, so it can find and kill them. Returns 0 or errno.
int nex_become_subreaper(void);

/// Sends descriptor `fd` over the Unix socket `socket` (SCM_RIGHTS, with one byte of data),
/// without waiting: a receiver that does not read makes it fail (EAGAIN). Returns 0 or errno.
int nex_send_descriptor(int socket, int fd);

/// Receives one descriptor sent by `nex_send_descriptor` on `socket`, close-on-exec, waiting at
/// most `timeout_ms`. Returns 0 and the descriptor in `*fd`, or errno (ETIMEDOUT, EPROTO when
/// the message carries no descriptor: any it did carry are closed).
int nex_receive_descriptor(int socket, int timeout_ms, int *fd);

/// Opens a TCP connection to `host`:`port` (each address getaddrinfo gives, in turn), close-on-
/// exec, with TCP_NODELAY, waiting at most `timeout_ms` per address. Returns 0 and the socket
/// (blocking) in `*fd`, or the last errno (ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH when the name
/// does not resolve).
int nex_dial_tcp(const char *host, int port, int timeout_ms, int *fd);

/// The local IP address of a connected socket, as text (`inet_ntop`) into `text`. Returns 0 or errno.
int nex_local_address(int socket, char *text, int length);

/// Sets this process's parent-death signal (PR_SET_PDEATHSIG): `signal_number` arrives when
/// the thread that started it ends. Returns 0 or errno.
int nex_set_parent_death_signal(int signal_number);

#endif
