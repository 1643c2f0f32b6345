// The Linux sandbox of a workload and its agent: namespaces, id maps, a file system view of
// binds, no capabilities, no_new_privs and seccomp. Everything the child runs here runs
// between a raw clone and exec of a multithreaded parent: async-signal-safe calls only, no
// malloc, and raw system calls where glibc would coordinate threads (setuid and friends
// broadcast to every thread glibc believes exists, and would wait forever for them).
#define _GNU_SOURCE
#include "sandbox_internal.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *sandbox_step_names[] = {
    "clone", "uid_map", "gid_map", "mount private", "sandbox root", "bind", "mount /proc", "mount /dev",
    "mount scratch", "pivot_root", "sethostname", "loopback up", "setresuid", "drop capabilities",
    "no_new_privs", "seccomp", "parent exited",
};

const char *nex_sandbox_step_name(int step) {
    if (step >= SANDBOX_STEP_BIND_OF) return "bind";
    if (step < SANDBOX_STEP_CLONE || step > SANDBOX_STEP_WAIT) return "sandbox";
    return sandbox_step_names[step - SANDBOX_STEP_CLONE];
}

unsigned long nex_sandbox_clone_flags(const nex_sandbox *sandbox) {
    unsigned long flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
    if (sandbox->private_network) flags |= CLONE_NEWNET;
    return flags;
}

// MARK: - Parent: id maps

static int format_map(char *out, size_t size, unsigned id) {
    int length = snprintf(out, size, "%u %u 1\n", id, id);
    return (length > 0 && (size_t)length < size) ? length : -1;
}

static int write_file(const char *path, const char *text, size_t length) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    ssize_t written = write(fd, text, length);
    int error = written == (ssize_t)length ? 0 : (written < 0 ? errno : EIO);
    close(fd);
    return error;
}

/// newuidmap PID ID ID 1 (or newgidmap): a setuid helper that checks the range against
/// /etc/subuid (/etc/subgid) of the calling user.
static int run_id_mapper(const char *helper, pid_t child, unsigned id) {
    char pid_text[24], id_text[24];
    snprintf(pid_text, sizeof pid_text, "%d", (int)child);
    snprintf(id_text, sizeof id_text, "%u", id);
    char *argv[] = { (char *)helper, pid_text, id_text, id_text, (char *)"1", NULL };
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    // A setuid-root helper must not inherit the node's sockets.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    pid_t helper_pid;
    int error = posix_spawn(&helper_pid, helper, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) return error;
    int status;
    while (waitpid(helper_pid, &status, 0) < 0) {
        if (errno != EINTR) return errno;
    }
    return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ? 0 : EPERM;
}

int nex_sandbox_map_ids(pid_t child, const nex_sandbox *sandbox, int *step) {
    char path[64], map[64];
    if (sandbox->newuidmap) {
        *step = SANDBOX_STEP_UID_MAP;
        int error = run_id_mapper(sandbox->newuidmap, child, sandbox->uid);
        if (error) return error;
        *step = SANDBOX_STEP_GID_MAP;
        return run_id_mapper(sandbox->newgidmap, child, sandbox->gid);
    }
    *step = SANDBOX_STEP_UID_MAP;
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)child);
    int length = format_map(map, sizeof map, sandbox->uid);
    if (length < 0) return EINVAL;
    int error = write_file(path, map, (size_t)length);
    if (error) return error;
    *step = SANDBOX_STEP_GID_MAP;
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)child);
    length = format_map(map, sizeof map, sandbox->gid);
    if (length < 0) return EINVAL;
    return write_file(path, map, (size_t)length);
}

// MARK: - Child: file system view

#define OLD_ROOT "/oldroot"
#define NEW_ROOT "/newroot"

static int join_path(char *out, size_t size, const char *prefix, const char *path) {
    int length = snprintf(out, size, "%s%s", prefix, path);
    if (length < 0 || (size_t)length >= size) { errno = ENAMETOOLONG; return -1; }
    return 0;
}

/// mkdir -p, mode 0755.
static int make_directories(const char *path) {
    char partial[PATH_MAX];
    size_t length = strlen(path);
    if (length >= sizeof partial) { errno = ENAMETOOLONG; return -1; }
    memcpy(partial, path, length + 1);
    for (size_t i = 1; i <= length; i++) {
        if (partial[i] != '/' && partial[i] != '\0') continue;
        char saved = partial[i];
        partial[i] = '\0';
        if (mkdir(partial, 0755) != 0 && errno != EEXIST) return -1;
        partial[i] = saved;
    }
    return 0;
}

/// An empty file to bind a file onto (its parent directories made).
static int make_file(const char *path) {
    char parent[PATH_MAX];
    size_t length = strlen(path);
    if (length >= sizeof parent) { errno = ENAMETOOLONG; return -1; }
    memcpy(parent, path, length + 1);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (make_directories(parent) != 0) return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

/// Sets the mount attributes of `target` and of everything mounted below it (mount_setattr,
/// Linux 5.12). There is no fallback: a remount of `target` alone would leave its submounts
/// writable, so an older kernel cannot sandbox (the node's start-up probe says so).
static int set_mount_attributes(const char *target, unsigned long long attributes) {
#if defined(SYS_mount_setattr)
    struct mount_attr attr = { .attr_set = attributes };
    return (int)syscall(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof attr);
#else
    (void)target; (void)attributes;
    errno = ENOSYS;
    return -1;
#endif
}

/// Binds `from` (a path under OLD_ROOT) at `target` in the new root.
static int bind_path(const char *from, const char *target, unsigned long long attributes) {
    char to[PATH_MAX];
    if (join_path(to, sizeof to, NEW_ROOT, target) != 0) return -1;
    struct stat info;
    if (stat(from, &info) != 0) return -1;
    if ((S_ISDIR(info.st_mode) ? make_directories(to) : make_file(to)) != 0) return -1;
    if (mount(from, to, NULL, MS_BIND | MS_REC, NULL) != 0) return -1;
    return set_mount_attributes(to, attributes);
}

static int mount_tmpfs(const char *target, unsigned long flags, const char *options) {
    if (make_directories(target) != 0) return -1;
    return mount("tmpfs", target, "tmpfs", flags, options);
}

/// /dev: a small tmpfs with the harmless devices bound from the host, the /proc/self/fd
/// links and a private /dev/shm.
static int make_dev(const nex_sandbox *sandbox) {
    // nodev: the devices are bind mounts of their own; the tmpfs is made read-only below.
    if (mount_tmpfs(NEW_ROOT "/dev", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") != 0) return -1;
    // No tty: the sandbox has no controlling terminal, and must not reach the node's.
    static const char *devices[] = { "null", "zero", "full", "random", "urandom" };
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
        char source[32];
        snprintf(source, sizeof source, "/dev/%s", devices[i]);
        struct stat info;
        char host[64];
        snprintf(host, sizeof host, OLD_ROOT "%s", source);
        if (stat(host, &info) != 0) continue;  // a host without it (e.g. no /dev/tty in a container)
        if (bind_path(host, source, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC) != 0) return -1;
    }
    static const char *links[][2] = {
        { "/proc/self/fd", NEW_ROOT "/dev/fd" }, { "/proc/self/fd/0", NEW_ROOT "/dev/stdin" },
        { "/proc/self/fd/1", NEW_ROOT "/dev/stdout" }, { "/proc/self/fd/2", NEW_ROOT "/dev/stderr" },
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        if (symlink(links[i][0], links[i][1]) != 0) return -1;
    }
    char options[96];
    snprintf(options, sizeof options, "mode=0700,uid=%u,gid=%u,size=%lld", sandbox->uid, sandbox->gid,
             sandbox->scratch_bytes > 0 ? sandbox->scratch_bytes : 64LL << 20);
    if (mount_tmpfs(NEW_ROOT "/dev/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) != 0) return -1;
    return mount(NULL, NEW_ROOT "/dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

/// Brings up `lo` in a fresh network namespace.
static int loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    int result = ioctl(fd, SIOCGIFFLAGS, &request);
    if (result == 0) {
        request.ifr_flags |= IFF_UP | IFF_RUNNING;
        result = ioctl(fd, SIOCSIFFLAGS, &request);
    }
    int error = errno;
    close(fd);
    errno = error;
    return result;
}

static int pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

#define FAIL(which) do { *step = (which); return errno ? errno : EPERM; } while (0)

int nex_sandbox_enter(const nex_sandbox *sandbox, int *step) {
    // The bind sources are looked up as the parent's uid (its own directories may be closed
    // to the sandbox's uid), in our mount namespace (a bind must come from it), before
    // anything is mounted over them.
    if (sandbox->bind_count > NEX_SANDBOX_MAX_BINDS) { errno = E2BIG; FAIL(SANDBOX_STEP_BIND); }
    int sources[NEX_SANDBOX_MAX_BINDS];
    for (int i = 0; i < sandbox->bind_count; i++) {
        sources[i] = open(sandbox->binds[i].source, O_PATH | O_CLOEXEC);
        if (sources[i] < 0) FAIL(SANDBOX_STEP_BIND_OF + i);
    }

    // Our ids next, so that what we create belongs to a mapped uid. The namespace maps no
    // uid 0, so the kernel keeps our capabilities in it across the change (dropped below).
    if (syscall(SYS_setgroups, 0, NULL) != 0) FAIL(SANDBOX_STEP_IDS);
    if (syscall(SYS_setresgid, sandbox->gid, sandbox->gid, sandbox->gid) != 0) FAIL(SANDBOX_STEP_IDS);
    if (syscall(SYS_setresuid, sandbox->uid, sandbox->uid, sandbox->uid) != 0) FAIL(SANDBOX_STEP_IDS);

    // Nothing mounted here propagates back to the host.
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) FAIL(SANDBOX_STEP_MOUNT_PRIVATE);

    // A tmpfs over /tmp holds the new root while it is built; the old root stays reachable
    // under /oldroot (pivot_root moves it there), so /tmp's own contents can be bound too.
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") != 0) FAIL(SANDBOX_STEP_ROOT);
    if (chdir("/tmp") != 0 || mkdir("newroot", 0755) != 0 || mkdir("oldroot", 0755) != 0) FAIL(SANDBOX_STEP_ROOT);
    if (mount("tmpfs", "newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") != 0) FAIL(SANDBOX_STEP_ROOT);
    if (pivot_root(".", "oldroot") != 0 || chdir("/") != 0) FAIL(SANDBOX_STEP_PIVOT);

    // Scratch first: a bind may lie below a scratch directory (a path under /tmp).
    char options[96];
    snprintf(options, sizeof options, "mode=0700,uid=%u,gid=%u,size=%lld", sandbox->uid, sandbox->gid,
             sandbox->scratch_bytes > 0 ? sandbox->scratch_bytes : 64LL << 20);
    for (int i = 0; i < sandbox->scratch_count; i++) {
        char target[PATH_MAX];
        if (join_path(target, sizeof target, NEW_ROOT, sandbox->scratch[i]) != 0
            || mount_tmpfs(target, MS_NOSUID | MS_NODEV, options) != 0) FAIL(SANDBOX_STEP_SCRATCH);
    }
    for (int i = 0; i < sandbox->bind_count; i++) {
        const nex_sandbox_bind *bind = &sandbox->binds[i];
        unsigned long long attributes = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
        if (!bind->writable) attributes |= MOUNT_ATTR_RDONLY;
        // The source as the parent opened it: /proc/self/fd/N leads to it without a path walk.
        char from[64];
        snprintf(from, sizeof from, OLD_ROOT "/proc/self/fd/%d", sources[i]);
        if (bind_path(from, bind->target, attributes) != 0) FAIL(SANDBOX_STEP_BIND_OF + i);
    }
    if (make_directories(NEW_ROOT "/proc") != 0
        || mount("proc", NEW_ROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) FAIL(SANDBOX_STEP_PROC);
    if (make_dev(sandbox) != 0) FAIL(SANDBOX_STEP_DEV);

    // Leave the old root for good: detach it, then make the new root "/" (pivot_root(".", ".")
    // stacks the build tmpfs on top of it, and the detach removes that).
    if (umount2(OLD_ROOT, MNT_DETACH) != 0) FAIL(SANDBOX_STEP_PIVOT);
    if (chdir(NEW_ROOT) != 0 || pivot_root(".", ".") != 0 || umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) FAIL(SANDBOX_STEP_PIVOT);
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) FAIL(SANDBOX_STEP_ROOT);
    // Nothing the host mounts later under a bound directory propagates in (unattributed).
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) FAIL(SANDBOX_STEP_MOUNT_PRIVATE);

    if (sandbox->hostname && sethostname(sandbox->hostname, strlen(sandbox->hostname)) != 0) FAIL(SANDBOX_STEP_HOSTNAME);
    if (sandbox->private_network && loopback_up() != 0) FAIL(SANDBOX_STEP_LOOPBACK);

    // No capability survives: not in the bounding set, not ambient, not permitted.
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) FAIL(SANDBOX_STEP_CAPABILITIES);
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) FAIL(SANDBOX_STEP_CAPABILITIES);
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0) FAIL(SANDBOX_STEP_CAPABILITIES);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) FAIL(SANDBOX_STEP_NO_NEW_PRIVS);
    return 0;
}

// MARK: - seccomp

#if defined(__x86_64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "the sandbox's seccomp filter knows x86_64 and aarch64"
#endif

#define DENY(name) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_##name, 0, 1), \
                   BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

/// The namespace flags clone(2) may not ask for.
#define NAMESPACE_FLAGS (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC \
                         | CLONE_NEWUTS | CLONE_NEWCGROUP)

int nex_sandbox_seccomp(void) {
    // What a workload never needs, after the default container profile: EPERM for each.
    // Another architecture's calls (x32 on x86_64 too) end the process.
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
#endif
        DENY(mount), DENY(umount2), DENY(pivot_root), DENY(chroot), DENY(move_mount), DENY(open_tree),
        DENY(fsopen), DENY(fsconfig), DENY(fsmount), DENY(fspick), DENY(mount_setattr),
        DENY(setns), DENY(unshare),
        DENY(ptrace), DENY(process_vm_readv), DENY(process_vm_writev), DENY(kcmp), DENY(pidfd_getfd),
        DENY(kexec_load), DENY(kexec_file_load), DENY(reboot), DENY(swapon), DENY(swapoff),
        DENY(init_module), DENY(finit_module), DENY(delete_module),
        DENY(bpf), DENY(perf_event_open), DENY(userfaultfd), DENY(fanotify_init),
        DENY(keyctl), DENY(add_key), DENY(request_key),
        DENY(acct), DENY(quotactl), DENY(syslog), DENY(vhangup), DENY(lookup_dcookie),
        DENY(open_by_handle_at), DENY(name_to_handle_at),
        DENY(settimeofday), DENY(clock_settime), DENY(clock_adjtime), DENY(adjtimex),
        DENY(sethostname), DENY(setdomainname),
        DENY(io_uring_setup), DENY(io_uring_enter), DENY(io_uring_register),
#if defined(__x86_64__)
        DENY(iopl), DENY(ioperm), DENY(uselib),
#endif
        // clone3 passes its flags in memory a filter cannot read: ENOSYS sends libc back to
        // clone, whose flags are checked below.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        // clone: EPERM with a namespace flag.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NAMESPACE_FLAGS, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        // personality: PER_LINUX, PER_LINUX32, either with UNAME26, and the query 0xffffffff
        // only (no ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC...), as the default container profile.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 0, 8),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0, 5, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x8, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x20000, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x20008, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffff, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        // ioctl: no typing into a terminal (TIOCSTI) or console tricks (TIOCLINUX).
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 5),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCSTI, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCLINUX, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = { .len = (unsigned short)(sizeof filter / sizeof filter[0]), .filter = filter };
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) return errno;
    return 0;
}
