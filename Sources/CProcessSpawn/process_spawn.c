#define _GNU_SOURCE
#include "process_spawn.h"
#include "sandbox_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { STEP_FORK, STEP_PIPE, STEP_SETPGID, STEP_PDEATHSIG, STEP_PARENT_GONE, STEP_RLIMIT, STEP_FDS, STEP_CGROUP, STEP_CHDIR, STEP_EXEC };
static const char *step_names[] = { "fork", "pipe", "setpgid", "prctl", "parent exited", "setrlimit", "redirect", "cgroup", "chdir", "exec" };

static const char *step_name(int step) {
    if (step >= SANDBOX_STEP_CLONE) return nex_sandbox_step_name(step);
    if (step < 0 || step > STEP_EXEC) return "spawn";
    return step_names[step];
}

static void report_and_exit(int fd, int step, int error) {
    int message[2] = { step, error };
    ssize_t ignored = write(fd, message, sizeof message);
    (void)ignored;
    _exit(127);
}

static int set_limit(int resource, long long value) {
    if (value < 0) return 0;
    struct rlimit limit = { (rlim_t)value, (rlim_t)value };
    return setrlimit(resource, &limit);
}

static int move_fd(int from, int to, int fallback_flags) {
    if (from < 0) {
        int null_fd = open("/dev/null", fallback_flags);
        if (null_fd < 0) return -1;
        if (null_fd != to) { if (dup2(null_fd, to) < 0) return -1; close(null_fd); }
        return 0;
    }
    return dup2(from, to) < 0 ? -1 : 0;
}

/// Marks every descriptor from `first` on close-on-exec (the report pipe already is), so only
/// the standard streams (and a passed descriptor 3) survive exec. close_range(2) when the
/// kernel has it, else one by one.
static int close_others_at_exec(int first) {
#if defined(SYS_close_range)
    if (syscall(SYS_close_range, (unsigned)first, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) == 0) return 0;
#endif
    struct rlimit limit;
    rlim_t top = 65536;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < (1 << 20)) top = limit.rlim_cur;
    for (int fd = first; fd < (int)top; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    return 0;
}

/// Writes `pid` to a cgroup.procs file.
static int join_cgroup(const char *procs, pid_t pid) {
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char digits[24];
    int at = sizeof digits;
    pid_t value = pid;
    do { digits[--at] = (char)('0' + value % 10); value /= 10; } while (value > 0 && at > 0);
    ssize_t written = write(fd, digits + at, sizeof digits - at);
    int error = errno;
    close(fd);
    if (written < 0) { errno = error; return -1; }
    return 0;
}


int nex_send_descriptor(int socket, int fd) {
    char byte = 0;
    struct iovec data = { .iov_base = &byte, .iov_len = 1 };
    union { char buffer[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = { .msg_iov = &data, .msg_iovlen = 1, .msg_control = control.buffer,
                              .msg_controllen = sizeof control.buffer };
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &fd, sizeof(int));
    ssize_t sent;
    do { sent = sendmsg(socket, &message, MSG_NOSIGNAL | MSG_DONTWAIT); } while (sent < 0 && errno == EINTR);
    return sent == 1 ? 0 : (sent < 0 ? errno : EPROTO);
}

int nex_receive_descriptor(int socket, int timeout_ms, int *fd) {
    struct pollfd waiting = { .fd = socket, .events = POLLIN };
    int ready;
    do { ready = poll(&waiting, 1, timeout_ms); } while (ready < 0 && errno == EINTR);
    if (ready < 0) return errno;
    if (ready == 0) return ETIMEDOUT;
    char byte;
    struct iovec data = { .iov_base = &byte, .iov_len = 1 };
    // Room for a few descriptors: a sender that packs more than one gets all of them closed.
    union { char buffer[CMSG_SPACE(4 * sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr message = { .msg_iov = &data, .msg_iovlen = 1, .msg_control = control.buffer,
                              .msg_controllen = sizeof control.buffer };
    ssize_t received;
    do { received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC | MSG_DONTWAIT); } while (received < 0 && errno == EINTR);
    if (received < 0) return errno;
    int found = -1, extra = 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int each;
            memcpy(&each, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
            if (found < 0) found = each; else { close(each); extra = 1; }
        }
    }
    if (received == 0 && found < 0) return ECONNRESET;
    if (found < 0 || extra || (message.msg_flags & MSG_CTRUNC)) {
        if (found >= 0) close(found);
        return EPROTO;
    }
    *fd = found;
    return 0;
}

int nex_dial_tcp(const char *host, int port, int timeout_ms, int *fd) {
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *addresses = NULL;
    if (getaddrinfo(host, service, &hints, &addresses) != 0 || !addresses) return EHOSTUNREACH;
    int error = ECONNREFUSED;
    for (struct addrinfo *address = addresses; address; address = address->ai_next) {
        int sock = socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, address->ai_protocol);
        if (sock < 0) { error = errno; continue; }
        int connected = connect(sock, address->ai_addr, address->ai_addrlen);
        if (connected != 0 && errno == EINPROGRESS) {
            struct pollfd waiting = { .fd = sock, .events = POLLOUT };
            int ready;
            do { ready = poll(&waiting, 1, timeout_ms); } while (ready < 0 && errno == EINTR);
            socklen_t length = sizeof error;
            if (ready == 0) { error = ETIMEDOUT; }
            else if (ready < 0) { error = errno; }
            else if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &error, &length) != 0) { error = errno; }
            connected = (ready > 0 && error == 0) ? 0 : -1;
        } else if (connected != 0) {
            error = errno;
        }
        if (connected == 0) {
            int one = 1;
            setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            int flags = fcntl(sock, F_GETFL);
            if (flags >= 0) fcntl(sock, F_SETFL, flags & ~O_NONBLOCK);
            freeaddrinfo(addresses);
            *fd = sock;
            return 0;
        }
        close(sock);
    }
    freeaddrinfo(addresses);
    return error;
}

int nex_local_address(int socket, char *text, int length) {
    struct sockaddr_storage address;
    socklen_t size = sizeof address;
    if (getsockname(socket, (struct sockaddr *)&address, &size) != 0) return errno;
    const void *raw = address.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&address)->sin_addr
                    : address.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&address)->sin6_addr : NULL;
    if (!raw) return EAFNOSUPPORT;
    return inet_ntop(address.ss_family, raw, text, (socklen_t)length) ? 0 : errno;
}

int nex_set_undumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : errno;
}

int nex_become_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : errno;
}

int nex_set_parent_death_signal(int signal_number) {
    return prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0) == 0 ? 0 : errno;
}

/// The child's side, from its start to exec. `go` (sandbox only) is the read end of the pipe
/// on which the parent says the id maps and cgroups are in place.
/// `fd` moved to 10 or above (close-on-exec), so it cannot be the descriptor 3 a child is
/// given, nor one of its standard streams.
static int move_high(int fd) {
    if (fd < 0 || fd >= 10) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    if (moved < 0) return fd;
    close(fd);
    return moved;
}

static void run_child(const char *path, char *const argv[], char *const envp[], const nex_spawn_options *options,
                      pid_t parent, int report, int go) {
    // Signals arrive blocked (the parent blocked them around the fork): reset every handler
    // first, then unblock, so no handler of the parent ever runs in the child.
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    report = move_high(report);
    go = move_high(go);
    const nex_sandbox *sandbox = options->sandbox;
    if (sandbox) {
        char byte;
        ssize_t got;
        do { got = read(go, &byte, 1); } while (got < 0 && errno == EINTR);
        if (got != 1) _exit(127);  // the parent failed to map our ids, or died
        int step = 0;
        int error = nex_sandbox_enter(sandbox, &step);
        if (error) report_and_exit(report, step, error);
    }
    // A sandbox gets a session of its own: no controlling terminal of the node's to reach.
    if (sandbox && setsid() < 0) report_and_exit(report, STEP_SETPGID, errno);
    if (!sandbox && options->new_process_group && setpgid(0, 0) != 0) report_and_exit(report, STEP_SETPGID, errno);
    if (options->parent_death_signal > 0) {
        // Set after the sandbox's uid change, which clears it.
        if (prctl(PR_SET_PDEATHSIG, options->parent_death_signal) != 0) report_and_exit(report, STEP_PDEATHSIG, errno);
        if (sandbox) {
            // The parent lies outside our pid namespace (getppid() is 0): it holds the other
            // end of `go` open until we exec, so a hang-up means it is gone.
            struct pollfd check = { .fd = go, .events = POLLIN };
            if (poll(&check, 1, 0) > 0 && (check.revents & POLLHUP)) report_and_exit(report, STEP_PARENT_GONE, ESRCH);
        } else if (getppid() != parent) {
            report_and_exit(report, STEP_PARENT_GONE, ESRCH);
        }
    }
    if (!sandbox) {
        for (int i = 0; i < options->cgroup_procs_count; i++) {
            if (join_cgroup(options->cgroup_procs_paths[i], getpid()) != 0) report_and_exit(report, STEP_CGROUP, errno);
        }
    }
    if (move_fd(options->stdin_fd, 0, O_RDONLY) != 0 || move_fd(options->stdout_fd, 1, O_WRONLY) != 0
        || move_fd(options->stderr_fd, 2, O_WRONLY) != 0) report_and_exit(report, STEP_FDS, errno);
    if (options->working_directory && chdir(options->working_directory) != 0) report_and_exit(report, STEP_CHDIR, errno);
    // Each passed descriptor is first copied above 9 (close-on-exec), so moving one onto 3 or 4
    // cannot overwrite another still to be moved; dup2 clears close-on-exec on the target.
    int passed = 0, copies[2];
    while (passed < 2 && options->passed_fds[passed] > 2) {
        copies[passed] = fcntl(options->passed_fds[passed], F_DUPFD_CLOEXEC, 10);
        if (copies[passed] < 0) report_and_exit(report, STEP_FDS, errno);
        passed++;
    }
    for (int i = 0; i < passed; i++) {
        if (dup2(copies[i], 3 + i) < 0) report_and_exit(report, STEP_FDS, errno);
    }
    if (options->close_other_descriptors) close_others_at_exec(3 + passed);
    if (set_limit(RLIMIT_AS, options->limit_address_space) != 0
        || set_limit(RLIMIT_NOFILE, options->limit_open_files) != 0
        || set_limit(RLIMIT_NPROC, options->limit_processes) != 0) report_and_exit(report, STEP_RLIMIT, errno);
    if (sandbox && sandbox->seccomp) {
        int error = nex_sandbox_seccomp();
        if (error) report_and_exit(report, SANDBOX_STEP_SECCOMP, error);
    }
    execve(path, argv, envp);
    report_and_exit(report, STEP_EXEC, errno);
}

/// In the parent of a sandboxed child: maps its ids and puts it in its cgroups, then lets it go.
static int release_sandboxed_child(pid_t child, const nex_spawn_options *options, int go, int *step) {
    int error = nex_sandbox_map_ids(child, options->sandbox, step);
    if (error) return error;
    *step = STEP_CGROUP;
    for (int i = 0; i < options->cgroup_procs_count; i++) {
        if (join_cgroup(options->cgroup_procs_paths[i], child) != 0) return errno;
    }
    ssize_t written;
    do { written = write(go, "g", 1); } while (written < 0 && errno == EINTR);
    *step = SANDBOX_STEP_WAIT;
    return written == 1 ? 0 : errno;
}

int nex_spawn(const char *path, char *const argv[], char *const envp[], const nex_spawn_options *options,
              pid_t *pid_out, const char **failed_step, int *failed_bind) {
    if (failed_bind) *failed_bind = -1;
    int report[2], go[2] = { -1, -1 };
    if (pipe2(report, O_CLOEXEC) != 0) {
        if (failed_step) *failed_step = step_names[STEP_PIPE];
        return errno;
    }
    if (options->sandbox && pipe2(go, O_CLOEXEC) != 0) {
        int error = errno;
        close(report[0]); close(report[1]);
        if (failed_step) *failed_step = step_names[STEP_PIPE];
        return error;
    }
    pid_t parent = getpid();
    // Every signal blocked across the fork: the child resets the handlers before it unblocks.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    // A sandboxed child is cloned into its namespaces: it is pid 1 of its own pid namespace
    // (when it dies, everything in the sandbox dies) and a direct child of ours. A raw clone
    // without a new stack behaves like fork.
    pid_t child = options->sandbox
        ? (pid_t)syscall(SYS_clone, nex_sandbox_clone_flags(options->sandbox) | SIGCHLD, 0, 0, 0, 0)
        : fork();
    if (child != 0) pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (child < 0) {
        int error = errno;
        close(report[0]); close(report[1]);
        if (go[0] >= 0) { close(go[0]); close(go[1]); }
        if (failed_step) *failed_step = options->sandbox ? nex_sandbox_step_name(SANDBOX_STEP_CLONE) : step_names[STEP_FORK];
        return error;
    }
    if (child == 0) {
        close(report[0]);
        if (go[1] >= 0) close(go[1]);
        run_child(path, argv, envp, options, parent, report[1], go[0]);
    }
    close(report[1]);
    if (options->sandbox) {
        close(go[0]);
        int step = 0;
        int error = release_sandboxed_child(child, options, go[1], &step);
        if (error) {
            close(go[1]);
            close(report[0]);
            kill(child, SIGKILL);
            int status;
            while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
            if (failed_step) *failed_step = step_name(step);
            return error;
        }
    }
    // The child execs (the pipe closes) or reports within moments; one that hangs (it never
    // should) is killed rather than hanging the spawning thread.
    struct pollfd ready = { .fd = report[0], .events = POLLIN };
    int polled;
    do { polled = poll(&ready, 1, 30000); } while (polled < 0 && errno == EINTR);
    if (polled == 0) {
        kill(child, SIGKILL);
        close(report[0]);
        if (go[1] >= 0) close(go[1]);
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        if (failed_step) *failed_step = "start (no exec within 30 s)";
        return ETIMEDOUT;
    }
    int message[2];
    ssize_t got;
    do { got = read(report[0], message, sizeof message); } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (go[1] >= 0) close(go[1]);
    if (got == (ssize_t)sizeof message) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        if (failed_step) *failed_step = step_name(message[0]);
        if (failed_bind && message[0] >= SANDBOX_STEP_BIND_OF) *failed_bind = message[0] - SANDBOX_STEP_BIND_OF;
        return message[1] ? message[1] : EINVAL;
    }
    *pid_out = child;
    return 0;
}
