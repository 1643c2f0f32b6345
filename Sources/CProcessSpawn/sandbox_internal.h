#ifndef NEX_SANDBOX_INTERNAL_H
#define NEX_SANDBOX_INTERNAL_H

#include "process_spawn.h"

/// The clone(2) flags of a sandbox.
unsigned long nex_sandbox_clone_flags(const nex_sandbox *sandbox);

/// In the parent, after clone: writes the child's uid and gid maps (directly, or with
/// newuidmap/newgidmap). Returns 0 or an errno; `step` names what failed.
int nex_sandbox_map_ids(pid_t child, const nex_sandbox *sandbox, int *step);

/// The most binds a sandbox may have.
#define NEX_SANDBOX_MAX_BINDS 64

/// In the child, once its ids are mapped: builds the file system view, drops every
/// capability and sets no_new_privs and seccomp. Only async-signal-safe calls. Returns 0 or
/// an errno; `step` names what failed.
int nex_sandbox_enter(const nex_sandbox *sandbox, int *step);

/// Installs the seccomp filter (called last, just before exec, by nex_sandbox_enter's caller).
int nex_sandbox_seccomp(void);

/// Steps of the sandbox, numbered after process_spawn.c's own (see sandbox_step_name).
enum {
    SANDBOX_STEP_CLONE = 100, SANDBOX_STEP_UID_MAP, SANDBOX_STEP_GID_MAP, SANDBOX_STEP_MOUNT_PRIVATE,
    SANDBOX_STEP_ROOT, SANDBOX_STEP_BIND, SANDBOX_STEP_PROC, SANDBOX_STEP_DEV, SANDBOX_STEP_SCRATCH,
    SANDBOX_STEP_PIVOT, SANDBOX_STEP_HOSTNAME, SANDBOX_STEP_LOOPBACK, SANDBOX_STEP_IDS,
    SANDBOX_STEP_CAPABILITIES, SANDBOX_STEP_NO_NEW_PRIVS, SANDBOX_STEP_SECCOMP, SANDBOX_STEP_WAIT,
};

/// A failed bind reports this plus the bind's index as its step, so the caller can name it.
#define SANDBOX_STEP_BIND_OF 1000

const char *nex_sandbox_step_name(int step);

#endif
