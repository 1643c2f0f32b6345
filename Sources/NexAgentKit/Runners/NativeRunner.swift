import NexControl
import NexWorkloads
#if canImport(Glibc)
import Glibc
#endif
import NexAgentBus
import NIOCore
import NIOPosix
import Synchronization

/// Which of a workload's output streams a line came from.
public enum WorkloadOutputStream: String, Sendable, Equatable {
    case stdout
    case stderr
}

/// Runs one native workload for an agent: a Linux executable in its own process group,
/// killed when the agent dies, with exactly the environment it was given.
///
/// ```swift
/// let runner = try await NativeRunner.start(workload)
/// let code = await runner.run { stream, lines in await publish(stream, lines) }
/// ```
///
/// stdout and stderr are read through pipes on the event loop and split into lines (at most
/// ``maximumLineLength`` bytes; longer ones are split), handed on in batches: the complete lines
/// of one read. Delivery is back-pressured: while the callback is slow, the workload blocks on
/// its writes instead of the agent buffering them.
public final class NativeRunner: Sendable {
    /// What to run.
    public struct Workload: Sendable {
        public var workloadID: String
        public var namespace: String
        public var workloadName: String
        /// The artifact: an executable file.
        public var executable: String
        /// Arguments after argv[0] (which is the executable's path).
        public var arguments: [String]
        /// The workload's whole environment, besides `NEX_WORKLOAD_ID`, `NEX_NAMESPACE`,
        /// `NEX_WORKLOAD_NAME` (always set) and `PATH` (a default when missing). Nothing is
        /// inherited from the agent.
        public var environment: [String: String]
        public var limits: ResourceLimits
        /// The cgroup to place the workload in, if any (``WorkloadCgroup``); whatever is left in
        /// it is killed when the workload exits.
        public var cgroup: WorkloadCgroup?
        /// The directory the process starts in (an agent passes its private directory); nil
        /// keeps the caller's.
        public var workingDirectory: String?
        /// When the workload exits, SIGKILL every descendant of *this* process
        /// (``DescendantProcesses/killAll(keeping:)``). Only for a process that runs nothing
        /// else and is a child subreaper, as an agent is: then descendants that left the
        /// workload's process group (`setsid`, a double fork) die with it.
        public var killsDescendantsOnExit: Bool

        public init(workloadID: String, namespace: String, workloadName: String, executable: String,
                    arguments: [String] = [], environment: [String: String] = [:],
                    limits: ResourceLimits = ResourceLimits(), cgroup: WorkloadCgroup? = nil,
                    workingDirectory: String? = nil, killsDescendantsOnExit: Bool = false) {
            self.workingDirectory = workingDirectory
            self.killsDescendantsOnExit = killsDescendantsOnExit
            self.workloadID = workloadID
            self.namespace = namespace
            self.workloadName = workloadName
            self.executable = executable
            self.arguments = arguments
            self.environment = environment
            self.limits = limits
            self.cgroup = cgroup
        }

        /// The environment the process gets.
        public var processEnvironment: [String: String] {
            var environment = environment
            environment["NEX_WORKLOAD_ID"] = workloadID
            environment["NEX_NAMESPACE"] = namespace
            environment["NEX_WORKLOAD_NAME"] = workloadName
            if environment["PATH"] == nil { environment["PATH"] = NativeRunner.defaultPath }
            return environment
        }
    }

    /// The longest line handed to the callback; longer lines arrive in pieces of this size.
    public static let maximumLineLength = 64 * 1024
    /// `PATH` when the workload's environment has none.
    public static let defaultPath = "/usr/local/bin:/usr/bin:/bin"

    /// The workload's process (leader of its own process group).
    public let process: ChildProcess
    /// What limits were applied (`rlimit_as`, `rlimit_nofile`, `rlimit_nproc`, `cgroup`).
    public let limitsApplied: [String]
    private let outputs: [(WorkloadOutputStream, NIOAsyncChannel<[ByteBuffer], Never>)]
    private let running = Mutex(false)
    /// Killed and removed once the process has exited.
    private let cgroup: WorkloadCgroup?
    /// ``Workload/killsDescendantsOnExit``.
    private let killsDescendantsOnExit: Bool

    /// The workload's process id.
    public var pid: Int32 { process.pid }

    private init(process: ChildProcess, limitsApplied: [String], cgroup: WorkloadCgroup?, killsDescendantsOnExit: Bool,
                 outputs: [(WorkloadOutputStream, NIOAsyncChannel<[ByteBuffer], Never>)]) {
        self.process = process
        self.killsDescendantsOnExit = killsDescendantsOnExit
        self.cgroup = cgroup
        self.limitsApplied = limitsApplied
        self.outputs = outputs
    }

    /// Checks the artifact, starts the process and attaches to its output. Output is held
    /// (in the pipes) until ``run(onLines:)`` consumes it.
    public static func start(
        _ workload: Workload, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> NativeRunner {
        let path = workload.executable
        try checkArtifact(path)

        let stdoutPipe: [Int32], stderrPipe: [Int32]
        do {
            stdoutPipe = try SpawnThread.shared.makePipe()
        } catch {
            throw NativeRunnerError.outputSetupFailed(path: path, reason: "\(error)")
        }
        do {
            stderrPipe = try SpawnThread.shared.makePipe()
        } catch {
            close(stdoutPipe[0]); close(stdoutPipe[1])
            throw NativeRunnerError.outputSetupFailed(path: path, reason: "\(error)")
        }
        // A cgroup limits what rlimits only approximate: RLIMIT_NPROC counts every process of
        // the user (the node and all agents too), RLIMIT_AS breaks runtimes that reserve large
        // address spaces. So the rlimit is used only where the cgroup does not cover it.
        var rlimits = workload.limits
        if workload.cgroup?.applied.contains("cgroup_memory") == true { rlimits.memoryBytes = nil }
        if workload.cgroup?.applied.contains("cgroup_pids") == true { rlimits.processes = nil }
        let options = SpawnOptions(
            newProcessGroup: true, parentDeathSignal: SIGKILL, limits: rlimits, stdin: .null,
            stdout: .fileDescriptor(stdoutPipe[1]), stderr: .fileDescriptor(stderrPipe[1]),
            cgroupProcsPaths: workload.cgroup?.procsFiles ?? [], killGroupOnExit: true,
            workingDirectory: workload.workingDirectory)
        var process: ChildProcess?
        defer { close(stdoutPipe[1]); close(stderrPipe[1]) }
        // ETXTBSY: the artifact was just written and a writable descriptor of it lingers in a
        // child forked meanwhile (until that child's exec); it goes away within milliseconds.
        var attempt = 0
        while process == nil {
            attempt += 1
            do {
                process = try ChildProcess(
                    executable: path, arguments: workload.arguments, environment: workload.processEnvironment, options: options)
            } catch let error as ChildProcess.SpawnError where error.step == "exec" && error.code == ETXTBSY && attempt < 10 {
                try? await Task.sleep(for: .milliseconds(20 * attempt))
            } catch let error as ChildProcess.SpawnError {
                close(stdoutPipe[0]); close(stderrPipe[0])
                throw classify(error, path: path)
            }
        }
        guard let process else { preconditionFailure("unreachable") }

        var outputs: [(WorkloadOutputStream, NIOAsyncChannel<[ByteBuffer], Never>)] = []
        var pending: [(WorkloadOutputStream, Int32)] = [(.stdout, stdoutPipe[0]), (.stderr, stderrPipe[0])]
        do {
            while !pending.isEmpty {
                let (stream, fd) = pending[0]
                outputs.append((stream, try await attach(fd, group: eventLoopGroup)))
                pending.removeFirst()
            }
        } catch {
            pending.forEach { close($0.1) }
            for (_, channel) in outputs { try? await channel.channel.close() }
            await process.terminate(grace: .zero)
            throw NativeRunnerError.outputSetupFailed(path: path, reason: "\(error)")
        }
        let applied = options.appliedLimitNames.filter { $0 != "cgroup" } + (workload.cgroup?.applied ?? [])
        return NativeRunner(process: process, limitsApplied: applied, cgroup: workload.cgroup,
                            killsDescendantsOnExit: workload.killsDescendantsOnExit, outputs: outputs)
    }

    /// Hands every output line to `onLines` (in order per stream, a batch per read; stdout and
    /// stderr are read concurrently) until the process has exited and its output is drained,
    /// and returns the exit code (negative: the signal that ended it).
    ///
    /// When the process exits, whatever it left in its process group is killed. Output still
    /// held open by an escaped descendant is given up two seconds after the exit. Call once.
    public func run(onLines: @escaping @Sendable (WorkloadOutputStream, [ByteBuffer]) async -> Void) async -> Int32 {
        let first = running.withLock { started in
            defer { started = true }
            return !started
        }
        precondition(first, "NativeRunner.run(onLines:) called twice for \(process.executable)")
        let progress = OutputProgress(streams: outputs.count)
        return await withTaskGroup(of: Void.self) { group in
            for (stream, channel) in outputs {
                group.addTask {
                    try? await channel.executeThenClose { inbound, _ in
                        for try await lines in inbound {
                            await onLines(stream, lines)
                            progress.delivered()
                        }
                    }
                    progress.finished()
                }
            }
            let code = await waitForExitKillingOnCancel()  // the group's leftovers are killed on exit
            killLeftovers()
            await drainOrGiveUp(progress)
            await group.waitForAll()
            return code
        }
    }

    /// Kills what the workload left behind outside its process group: everything in its
    /// cgroup, and with ``Workload/killsDescendantsOnExit`` every descendant of this process;
    /// then removes the cgroup.
    private func killLeftovers() {
        cgroup?.kill()
        if killsDescendantsOnExit { DescendantProcesses.killAll(keeping: [process.pid]) }
        cgroup?.remove()
    }

    /// After the exit, output still arrives until the pipes are drained. An escaped
    /// descendant (one that left the process group) could hold them open forever: give up on
    /// the output once it has been idle for 2 s, or 30 s after the exit at most.
    private func drainOrGiveUp(_ progress: OutputProgress) async {
        let clock = ContinuousClock()
        let giveUp = clock.now + .seconds(30)
        var lastCount = progress.count, idleSince = clock.now
        var interval = 1
        while !progress.allFinished {
            let now = clock.now
            if Task.isCancelled || now >= giveUp || now - idleSince >= .seconds(2) {
                for (_, output) in outputs { output.channel.close(promise: nil) }
                return
            }
            try? await Task.sleep(for: .milliseconds(interval))
            interval = min(interval * 2, 100)
            let count = progress.count
            if count != lastCount {
                lastCount = count
                idleSince = clock.now
            }
        }
    }

    /// The exit code; when the calling task is cancelled, the workload is killed first.
    private func waitForExitKillingOnCancel() async -> Int32 {
        if let code = await process.exitStatus(within: .seconds(86_400 * 365 * 100)) { return code }
        process.signalGroup(SIGKILL)
        while true {
            if let code = process.exitStatus { return code }
            if Task.isCancelled { usleep(1_000) } else { try? await Task.sleep(for: .milliseconds(5)) }
        }
    }

    /// SIGTERM to the workload's process group, SIGKILL after `grace`; returns the exit code.
    @discardableResult
    public func stop(grace: Duration) async -> Int32 {
        await process.terminate(grace: grace)
    }

    // MARK: - Start helpers

    private static func checkArtifact(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw NativeRunnerError.artifactMissing(path: path) }
            throw NativeRunnerError.startFailed(path: path, reason: "cannot start \(path): stat: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw NativeRunnerError.notRegularFile(path: path) }
        guard access(path, X_OK) == 0 else { throw NativeRunnerError.notExecutable(path: path) }
    }

    private static func classify(_ error: ChildProcess.SpawnError, path: String) -> NativeRunnerError {
        guard error.step == "exec" else { return .startFailed(path: path, reason: error.description) }
        switch error.code {
        case EACCES: return .notExecutable(path: path)
        case ENOEXEC: return .notExecutableFormat(path: path)
        default: return .startFailed(path: path, reason: error.description)
        }
    }

    private static func attach(_ fd: Int32, group: any EventLoopGroup) async throws -> NIOAsyncChannel<[ByteBuffer], Never> {
        try await NIOPipeBootstrap(group: group)
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 262_144))
            .takingOwnershipOfDescriptor(input: fd) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(OutputLineDecoder(maximumLineLength: maximumLineLength)))
                    return try NIOAsyncChannel<[ByteBuffer], Never>(
                        wrappingChannelSynchronously: channel,
                        // Batches of up to one read (256 KiB): at most 2 MiB waits per stream.
                        configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8)))
                }
            }
    }
}

/// How far ``NativeRunner/run(onLines:)`` has come with the output streams.
private final class OutputProgress: Sendable {
    private let state: Mutex<(lines: Int, open: Int)>

    init(streams: Int) { state = Mutex((0, streams)) }

    func delivered() { state.withLock { $0.lines += 1 } }
    func finished() { state.withLock { $0.open -= 1 } }
    var count: Int { state.withLock { $0.lines } }
    var allFinished: Bool { state.withLock { $0.open == 0 } }
}
