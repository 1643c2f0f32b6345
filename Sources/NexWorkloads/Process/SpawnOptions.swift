import NexControl

/// How ``ChildProcess/init(executable:arguments:environment:options:)`` starts a child:
/// its process group, parent-death signal, resource limits, standard streams and cgroup.
public struct SpawnOptions: Sendable {
    /// Where one of the child's standard streams goes.
    public enum Stream: Sendable, Equatable {
        /// `/dev/null`.
        case null
        /// A file, created with mode 0600 if missing; output is appended (stdin reads it).
        case file(String)
        /// A descriptor of this process, duplicated onto the child's stream. The caller keeps
        /// (and closes) its own copy.
        case fileDescriptor(Int32)
    }

    /// Start the child in a new process group that it leads (`setpgid(0, 0)`), so
    /// ``ChildProcess/signalGroup(_:)`` reaches everything it starts.
    public var newProcessGroup: Bool
    /// The signal the child receives when this process ends (`PR_SET_PDEATHSIG`), e.g. `SIGKILL`.
    /// Such children are always forked from one long-lived thread, because Linux sends the
    /// signal when the forking *thread* ends.
    public var parentDeathSignal: Int32?
    /// Address space, open files and processes (`setrlimit` in the child before `exec`).
    public var limits: ResourceLimits
    public var stdin: Stream
    public var stdout: Stream
    public var stderr: Stream
    /// The `cgroup.procs` files (cgroup v1 keeps memory, pids and cpu apart) the child's pid is
    /// written to before `exec` (by the child; for a sandboxed child, by this process before the
    /// child takes its own uid).
    public var cgroupProcsPaths: [String]
    /// With ``newProcessGroup``: when the child exits, SIGKILL what is left of its group
    /// (before the child is reaped, so the group id cannot have been reused).
    public var killGroupOnExit: Bool
    /// Whether the child inherits this process's other descriptors (those without
    /// close-on-exec). Off by default: SwiftNIO's sockets are not close-on-exec, and a
    /// workload must never inherit, say, its agent's bus connection.
    public var inheritDescriptors: Bool
    /// The child's working directory; nil keeps this process's (a workload must not start in
    /// the node's or its agent's working directory: agents pass their private directory).
    public var workingDirectory: String?
    /// Start the child in this sandbox (the working directory and executable are then paths
    /// inside it); nil: a plain child. The cgroups are joined on the child's behalf.
    public var sandbox: Sandbox?
    /// Descriptors of this process the child gets as its descriptors 3 and 4, in order (the
    /// caller keeps and closes its own copies), e.g. ends of socket pairs. At most two.
    public var passedDescriptors: [Int32] = []

    public init(newProcessGroup: Bool = false, parentDeathSignal: Int32? = nil, limits: ResourceLimits = ResourceLimits(),
                stdin: Stream = .null, stdout: Stream = .null, stderr: Stream = .null, cgroupProcsPaths: [String] = [],
                killGroupOnExit: Bool = false, inheritDescriptors: Bool = false, workingDirectory: String? = nil,
                sandbox: Sandbox? = nil) {
        self.sandbox = sandbox
        self.workingDirectory = workingDirectory
        self.killGroupOnExit = killGroupOnExit
        self.inheritDescriptors = inheritDescriptors
        self.newProcessGroup = newProcessGroup
        self.parentDeathSignal = parentDeathSignal
        self.limits = limits
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.cgroupProcsPaths = cgroupProcsPaths
    }

    /// The names of the limits these options apply: `rlimit_as`, `rlimit_nofile`, `rlimit_nproc`, `cgroup`.
    public var appliedLimitNames: [String] {
        var names: [String] = []
        if let value = limits.memoryBytes, value > 0 { names.append("rlimit_as") }
        if let value = limits.openFiles, value > 0 { names.append("rlimit_nofile") }
        if let value = limits.processes, value > 0 { names.append("rlimit_nproc") }
        if !cgroupProcsPaths.isEmpty { names.append("cgroup") }
        return names
    }
}
