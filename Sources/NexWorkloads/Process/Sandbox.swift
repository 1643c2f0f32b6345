/// The Linux sandbox a child process starts in: new user, pid, mount, ipc and uts namespaces
/// (network too when ``privateNetwork``), a uid and gid of its own, a read-only root file
/// system made of ``binds`` with a fresh `/proc`, a minimal `/dev` and private ``scratch``
/// directories, no capabilities, `no_new_privs`, and a seccomp filter.
///
/// The child is pid 1 of its pid namespace: when it ends, the kernel kills everything left in
/// the sandbox. See `docs/isolation.md`.
public struct Sandbox: Sendable, Equatable {
    /// A host path shown inside the sandbox.
    public struct Bind: Sendable, Equatable {
        /// The host path; resolve symlinks before (the sandbox binds it from outside its root).
        public var source: String
        /// Where it appears inside (absolute).
        public var target: String
        public var writable: Bool

        public init(source: String, target: String? = nil, writable: Bool = false) {
            self.source = source
            self.target = target ?? source
            self.writable = writable
        }
    }

    /// How the child's uid and gid maps are written.
    public enum IDMapping: Sendable, Equatable {
        /// By this process (it needs CAP_SETUID and CAP_SETGID: a node running as root).
        case direct
        /// By the setuid helpers `newuidmap` and `newgidmap`, which allow the ranges
        /// `/etc/subuid` and `/etc/subgid` give this process's user.
        case helpers(newuidmap: String, newgidmap: String)
    }

    /// The host uid and gid the child runs as (the same numbers inside).
    public var uid: UInt32
    public var gid: UInt32
    public var idMapping: IDMapping
    /// A network namespace of its own, with only a loopback interface.
    public var privateNetwork: Bool
    public var hostname: String
    public var binds: [Bind]
    /// Private writable tmpfs directories (mode 0700, owned by the child's uid).
    public var scratch: [String]
    /// The size limit of each scratch tmpfs and of `/dev/shm`.
    public var scratchBytes: Int
    /// Whether the seccomp filter is installed.
    public var seccomp: Bool

    public init(uid: UInt32, gid: UInt32, idMapping: IDMapping, privateNetwork: Bool = false,
                hostname: String = "nex-sandbox", binds: [Bind], scratch: [String] = ["/tmp"],
                scratchBytes: Int = 64 << 20, seccomp: Bool = true) {
        self.uid = uid
        self.gid = gid
        self.idMapping = idMapping
        self.privateNetwork = privateNetwork
        self.hostname = hostname
        self.binds = binds
        self.scratch = scratch
        self.scratchBytes = scratchBytes
        self.seccomp = seccomp
    }
}
