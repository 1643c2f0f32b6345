#if canImport(Glibc)
import Glibc
#endif
import CProcessSpawn
import Synchronization

/// A child process: started with `posix_spawn` (output appended to files) or with
/// `nex_spawn` (process group, parent-death signal, rlimits, cgroup, any descriptors).
///
/// No Foundation `Process`, pipes or run loop: the node starts helpers (`nats-server --dev`,
/// agents) and agents start workloads, and each must be stopped reliably. One reaper only:
/// ``exitStatus`` reaps under a lock, and every other accessor goes through it.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    public let executable: String
    /// The process group the child leads, when it was started with ``SpawnOptions/newProcessGroup``.
    public let processGroup: pid_t?
    /// Whether the rest of the group is killed when the child exits (``SpawnOptions/killGroupOnExit``).
    private let killGroupOnExit: Bool
    /// The exit status once reaped (the negated signal number if killed by a signal).
    private let reaped = Mutex<Int32?>(nil)

    /// Why a child could not be started: the executable, the step that failed and its errno.
    public struct SpawnError: Error, CustomStringConvertible {
        /// The program that was to be started.
        public var executable: String
        /// The step that failed: `exec`, `fork`, `setrlimit`, `cgroup`, `open stdout file /x`, ...
        public var step: String
        /// The errno of that step (0 when none applies).
        public var code: Int32
        public var description: String

        public init(executable: String, step: String, code: Int32) {
            self.executable = executable
            self.step = step
            self.code = code
            description = "cannot start \(executable): \(step): \(String(cString: strerror(code)))"
        }

        public init(description: String) {
            executable = ""
            step = ""
            code = 0
            self.description = description
        }
    }

    /// Starts `executable` with `arguments`; stdout is appended to `outputPath` (or discarded),
    /// stderr to `errorPath`, or to the same place when it is nil. The environment is this
    /// process's unless given.
    public init(executable: String, arguments: [String], environment: [String: String]? = nil,
                outputPath: String? = nil, errorPath: String? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let output = outputPath ?? "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        if let errorPath {
            posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { envp?.forEach { free($0) } }

        var child: pid_t = 0
        let result = envp.map { envp in posix_spawn(&child, executable, &actions, nil, argv, envp) }
            ?? posix_spawn(&child, executable, &actions, nil, argv, environ)
        guard result == 0 else {
            throw SpawnError(executable: executable, step: "posix_spawn", code: result)
        }
        pid = child
        Self.spawned.withLock { _ = $0.insert(child) }
        processGroup = nil
        killGroupOnExit = false
        self.executable = executable
    }

    /// Starts `executable` with `arguments` (argv[0] is the executable) and exactly
    /// `environment`, set up as `options` says.
    ///
    /// A failure in the child before or at `exec` (rlimit, cgroup, permission, format) is
    /// reported here, as a ``SpawnError`` naming the step and its errno.
    public init(executable: String, arguments: [String], environment: [String: String], options: SpawnOptions) throws {
        var descriptors: [Int32] = []
        defer { descriptors.forEach { close($0) } }
        func descriptor(_ stream: SpawnOptions.Stream, _ name: String, input: Bool) throws -> Int32 {
            switch stream {
            case .null: return -1
            case .fileDescriptor(let fd): return fd
            case .file(let path):
                let flags = input ? O_RDONLY | O_CLOEXEC : O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC
                let fd = open(path, flags, 0o600)
                guard fd >= 0 else { throw SpawnError(executable: executable, step: "open \(name) file \(path)", code: errno) }
                descriptors.append(fd)
                return fd
            }
        }
        var spawn = nex_spawn_options()
        spawn.new_process_group = options.newProcessGroup ? 1 : 0
        spawn.parent_death_signal = options.parentDeathSignal ?? 0
        spawn.limit_address_space = Self.limit(options.limits.memoryBytes)
        spawn.limit_open_files = Self.limit(options.limits.openFiles)
        spawn.limit_processes = Self.limit(options.limits.processes)
        spawn.stdin_fd = try descriptor(options.stdin, "stdin", input: true)
        spawn.stdout_fd = try descriptor(options.stdout, "stdout", input: false)
        spawn.stderr_fd = try descriptor(options.stderr, "stderr", input: false)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        let cgroups = options.cgroupProcsPaths.map { UnsafePointer(strdup($0)) }
        defer { cgroups.forEach { free(UnsafeMutablePointer(mutating: $0)) } }
        let cgroupList = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(cgroups.count, 1))
        defer { cgroupList.deallocate() }
        for (index, path) in cgroups.enumerated() { cgroupList[index] = path }
        spawn.cgroup_procs_paths = UnsafePointer(cgroupList)
        spawn.cgroup_procs_count = Int32(cgroups.count)

        spawn.close_other_descriptors = options.inheritDescriptors ? 0 : 1
        precondition(options.passedDescriptors.count <= 2 && options.passedDescriptors.allSatisfy { $0 > 2 },
                     "at most two passed descriptors, each above 2")
        let passed = options.passedDescriptors + [-1, -1]
        spawn.passed_fds = (passed[0], passed[1])
        let workingDirectory = options.workingDirectory.map { strdup($0) }
        defer { workingDirectory.map { free($0) } }
        spawn.working_directory = workingDirectory.map { UnsafePointer($0) } ?? nil
        let sandbox = options.sandbox.map(CSandbox.init)
        defer { sandbox?.free() }
        let binds = options.sandbox?.binds ?? []
        let startChild = { [spawn] () -> (Int32, pid_t, String) in
            var options = spawn
            var child: pid_t = 0
            var failedStep: UnsafePointer<CChar>?
            var failedBind: Int32 = -1
            let code: Int32
            if let sandbox {
                code = withUnsafePointer(to: sandbox.value) { pointer in
                    options.sandbox = pointer
                    return nex_spawn(executable, argv, envp, &options, &child, &failedStep, &failedBind)
                }
            } else {
                code = nex_spawn(executable, argv, envp, &options, &child, &failedStep, &failedBind)
            }
            var step = failedStep.map { String(cString: $0) } ?? "spawn"
            // A sandbox bind that failed is named by its source.
            if binds.indices.contains(Int(failedBind)) { step += " \(binds[Int(failedBind)].source)" }
            return (code, child, step)
        }
        // PR_SET_PDEATHSIG follows the forking thread: fork from one that never ends.
        let (code, child, step) = options.parentDeathSignal != nil ? try SpawnThread.shared.run(startChild) : startChild()
        guard code == 0 else { throw SpawnError(executable: executable, step: step, code: code) }
        pid = child
        Self.spawned.withLock { _ = $0.insert(child) }
        processGroup = options.newProcessGroup ? child : nil
        killGroupOnExit = options.newProcessGroup && options.killGroupOnExit
        self.executable = executable
    }

    /// A ``Sandbox`` as `nex_spawn` takes it, in memory of its own until ``free()``.
    private struct CSandbox: @unchecked Sendable {
        var value = nex_sandbox()
        private var strings: [UnsafeMutablePointer<CChar>] = []
        private let binds: UnsafeMutablePointer<nex_sandbox_bind>
        private let scratch: UnsafeMutablePointer<UnsafePointer<CChar>?>

        init(_ sandbox: Sandbox) {
            binds = .allocate(capacity: max(sandbox.binds.count, 1))
            scratch = .allocate(capacity: max(sandbox.scratch.count, 1))
            value.uid = sandbox.uid
            value.gid = sandbox.gid
            if case .helpers(let newuidmap, let newgidmap) = sandbox.idMapping {
                value.newuidmap = keep(newuidmap)
                value.newgidmap = keep(newgidmap)
            }
            value.private_network = sandbox.privateNetwork ? 1 : 0
            value.hostname = keep(sandbox.hostname)
            for (index, bind) in sandbox.binds.enumerated() {
                binds[index] = nex_sandbox_bind(source: keep(bind.source), target: keep(bind.target),
                                                writable: bind.writable ? 1 : 0)
            }
            value.binds = UnsafePointer(binds)
            value.bind_count = Int32(sandbox.binds.count)
            for (index, path) in sandbox.scratch.enumerated() { scratch[index] = keep(path) }
            value.scratch = UnsafePointer(scratch)
            value.scratch_count = Int32(sandbox.scratch.count)
            value.scratch_bytes = Int64(sandbox.scratchBytes)
            value.seccomp = sandbox.seccomp ? 1 : 0
        }

        private mutating func keep(_ text: String) -> UnsafePointer<CChar> {
            let copy = strdup(text)!
            strings.append(copy)
            return UnsafePointer(copy)
        }

        func free() {
            strings.forEach { Glibc.free($0) }
            binds.deallocate()
            scratch.deallocate()
        }
    }

    private static func limit(_ value: Int?) -> Int64 {
        guard let value, value > 0 else { return -1 }
        return Int64(value)
    }

    /// Whether the child still runs (reaps it when it has exited).
    public var isRunning: Bool { exitStatus == nil }

    /// The exit status, or nil while it runs.
    public var exitStatus: Int32? {
        reaped.withLock { status in
            if let status { return status }
            if killGroupOnExit, let processGroup {
                // Peek without reaping: while the child is a zombie its pid, and so the group
                // id, cannot be reused; kill the leftovers, then reap.
                var info = siginfo_t()
                guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0,
                      info._sifields._sigchld.si_pid == pid else { return nil }
                kill(-processGroup, SIGKILL)
            }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
            Self.spawned.withLock { _ = $0.remove(pid) }
            let signal = raw & 0x7F
            status = signal == 0 ? (raw >> 8) & 0xFF : -signal
            return status
        }
    }

    /// Sends `number` to the child alone, while it runs.
    public func signal(_ number: Int32) {
        reaped.withLock { status in
            if status == nil { kill(pid, number) }
        }
    }

    /// Sends `number` to the child's whole process group when it leads one, else to the
    /// child; only until the child is reaped (after that its pid, the group id, may be reused:
    /// see ``SpawnOptions/killGroupOnExit`` for what the group leaves behind). Returns whether
    /// any process received it.
    @discardableResult
    public func signalGroup(_ number: Int32) -> Bool {
        reaped.withLock { status in
            guard status == nil else { return false }
            return kill(processGroup.map { -$0 } ?? pid, number) == 0
        }
    }

    /// SIGTERM (to the group, when the child leads one), then SIGKILL after `grace`; returns
    /// once the child is gone. Blocks the calling thread: from async code use ``terminate(grace:)``.
    public func stop(grace: Duration = .seconds(5)) {
        signalGroup(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        if isRunning {
            signalGroup(SIGKILL)
            while isRunning { usleep(1_000) }
        }
    }

    /// ``stop(grace:)`` without blocking a thread; returns the exit status.
    @discardableResult
    public func terminate(grace: Duration = .seconds(5)) async -> Int32 {
        signalGroup(SIGTERM)
        if let status = await exitStatus(within: grace) { return status }
        signalGroup(SIGKILL)
        while true {  // SIGKILL cannot be ignored: this ends within milliseconds
            if let status = exitStatus { return status }
            if Task.isCancelled { usleep(1_000) } else { try? await Task.sleep(for: .milliseconds(5)) }
        }
    }

    /// Waits until the child has exited and returns its status (negative: the signal).
    ///
    /// Polls the reaper every few milliseconds (20 ms at most) with `Task.sleep`, so no
    /// thread is blocked. Throws `CancellationError` when the task is cancelled.
    public func waitForExit() async throws -> Int32 {
        var interval = 1
        while true {
            if let status = exitStatus { return status }
            try await Task.sleep(for: .milliseconds(interval))
            interval = min(interval * 2, 20)
        }
    }

    /// The exit status once the child has exited within `timeout`, else nil.
    /// Returns early (with the current status) when the task is cancelled.
    public func exitStatus(within timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        var interval = 1
        while true {
            if let status = exitStatus { return status }
            let now = ContinuousClock.now
            guard now < deadline, !Task.isCancelled else { return nil }
            try? await Task.sleep(for: min(.milliseconds(interval), now.duration(to: deadline)))
            interval = min(interval * 2, 20)
        }
    }

    deinit {
        if isRunning {
            signalGroup(SIGKILL)
            var raw: Int32 = 0
            waitpid(pid, &raw, 0)
        }
        Self.spawned.withLock { _ = $0.remove(pid) }
    }

    /// Pids of the children this process started through `ChildProcess` and has not reaped:
    /// its own children, as opposed to orphans re-parented to it as a child subreaper.
    static let spawned = Mutex<Set<pid_t>>([])
    public static var spawnedPIDs: Set<pid_t> { spawned.withLock { $0 } }
}
