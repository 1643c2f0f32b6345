#define _GNU_SOURCE
#include "process_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { STEP_FORK, STEP_PIPE, STEP_SETPGID, STEP_PDEATHSIG, STEP_PARENT_GONE, STEP_RLIMIT, STEP_FDS, STEP_CGROUP, STEP_CHDIR, STEP_EXEC };
static const char *step_names[] = { "fork", "pipe", "setpgid", "prctl", "parent exited", "setrlimit", "redirect", "cgroup", "chdir", "exec" };

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

/// Marks every descriptor above 2 close-on-exec (the report pipe already is), so only the
/// standard streams survive exec. close_range(2) when the kernel has it, else one by one.
static int close_others_at_exec(void) {
#if defined(SYS_close_range)
    if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) == 0) return 0;
#endif
    struct rlimit limit;
    rlim_t top = 65536;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < (1 << 20)) top = limit.rlim_cur;
    for (int fd = 3; fd < (int)top; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    return 0;
}

static int join_cgroup(const char *procs) {
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char digits[24];
    int at = sizeof digits;
    pid_t value = getpid();
    do { digits[--at] = (char)('0' + value % 10); value /= 10; } while (value > 0 && at > 0);
    ssize_t written = write(fd, digits + at, sizeof digits - at);
    int error = errno;
    close(fd);
    if (written < 0) { errno = error; return -1; }
    return 0;
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

int nex_spawn(const char *path, char *const argv[], char *const envp[], const nex_spawn_options *options,
              pid_t *pid_out, const char **failed_step) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        if (failed_step) *failed_step = step_names[STEP_PIPE];
        return errno;
    }
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        int error = errno;
        close(report[0]); close(report[1]);
        if (failed_step) *failed_step = step_names[STEP_FORK];
        return error;
    }
    if (child == 0) {
        close(report[0]);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
        }
        if (options->new_process_group && setpgid(0, 0) != 0) report_and_exit(report[1], STEP_SETPGID, errno);
        if (options->parent_death_signal > 0) {
            if (prctl(PR_SET_PDEATHSIG, options->parent_death_signal) != 0) report_and_exit(report[1], STEP_PDEATHSIG, errno);
            if (getppid() != parent) report_and_exit(report[1], STEP_PARENT_GONE, ESRCH);
        }
        if (options->cgroup_procs_path && join_cgroup(options->cgroup_procs_path) != 0) report_and_exit(report[1], STEP_CGROUP, errno);
        if (options->cgroup_procs_path2 && join_cgroup(options->cgroup_procs_path2) != 0) report_and_exit(report[1], STEP_CGROUP, errno);
        if (move_fd(options->stdin_fd, 0, O_RDONLY) != 0 || move_fd(options->stdout_fd, 1, O_WRONLY) != 0
            || move_fd(options->stderr_fd, 2, O_WRONLY) != 0) report_and_exit(report[1], STEP_FDS, errno);
        if (options->working_directory && chdir(options->working_directory) != 0) report_and_exit(report[1], STEP_CHDIR, errno);
        if (options->close_other_descriptors) close_others_at_exec();
        if (set_limit(RLIMIT_AS, options->limit_address_space) != 0
            || set_limit(RLIMIT_NOFILE, options->limit_open_files) != 0
            || set_limit(RLIMIT_NPROC, options->limit_processes) != 0) report_and_exit(report[1], STEP_RLIMIT, errno);
        execve(path, argv, envp);
        report_and_exit(report[1], STEP_EXEC, errno);
    }
    close(report[1]);
    int message[2];
    ssize_t got;
    do { got = read(report[0], message, sizeof message); } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof message) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        if (failed_step) *failed_step = step_names[message[0]];
        return message[1] ? message[1] : EINVAL;
    }
    *pid_out = child;
    return 0;
}
