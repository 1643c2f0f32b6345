import NexControl
import NexWorkloads
#if canImport(Glibc)
import Glibc
#endif
import CProcessSpawn
import FoundationEssentials
import Logging
import NATSWire
import NexAgentBus
import NIOCore
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The agent's logic: runs one workload for its node, over the agent bus.
///
/// It handshakes, then answers `deploy` (always with an ``AgentDeployResponse``; accepted
/// only once the process runs), `undeploy` and `ping`. Once deployed it publishes
/// `workload_deployed`, forwards every output line to `hostint.<id>.logs`, and publishes
/// `workload_undeployed` with the exit code when the workload ends. After that ``run()``
/// returns: an agent runs one workload and then exits.
///
/// A swift-service-lifecycle `Service`: `nex-agent` runs it in a `ServiceGroup`, whose graceful
/// shutdown (SIGTERM, SIGINT) stops the workload within its grace period. Everything the
/// agent does in the background (serving the bus, supervising the workload, watching its
/// parent, the parent-death signal) is a child task of ``run()``.
public final class AgentService: AgentRequestHandler, Service {
    /// What the node tells the agent, through its environment (``AgentEnvironment``).
    public struct Settings: Sendable, Equatable {
        public var busURL: String
        public var agentID: String
        public var nkeySeed: String
        /// The agent's private directory; artifacts must lie inside it.
        public var directory: String
        /// Where the workload starts; nil: ``directory``.
        public var workDirectory: String?
        /// A descriptor connected to the bus, used instead of dialing ``busURL``.
        public var busDescriptor: Int32?
        /// The socket channel on which the node hands over connected sockets
        /// (``AgentEnvironment/socketDescriptor``); nil: functions are only triggered through the node.
        public var socketDescriptor: Int32?
        /// The node's pid: the agent stops when its parent is another process. 0: the node
        /// lies outside the agent's pid namespace (a sandbox), where `getppid()` is 0.
        public var nodePID: Int32

        public init(busURL: String, agentID: String, nkeySeed: String, directory: String, workDirectory: String? = nil,
                    nodePID: Int32) {
            self.busURL = busURL
            self.agentID = agentID
            self.nkeySeed = nkeySeed
            self.directory = directory
            self.workDirectory = workDirectory
            self.nodePID = nodePID
        }

        /// Reads `NEX_AGENT_BUS_URL`, `NEX_AGENT_ID`, `NEX_AGENT_NKEY_SEED`, `NEX_AGENT_DIR`,
        /// `NEX_AGENT_WORK_DIR` (optional) and `NEX_NODE_PID`; throws naming the first one
        /// missing or invalid.
        public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
            func value(_ name: String) throws -> String {
                guard let value = environment[name], !value.isEmpty else { throw AgentServiceError.missingEnvironment(name: name) }
                return value
            }
            busURL = try value(AgentEnvironment.busURL)
            agentID = try value(AgentEnvironment.agentID)
            nkeySeed = try value(AgentEnvironment.nkeySeed)
            directory = try value(AgentEnvironment.directory)
            workDirectory = environment[AgentEnvironment.workDirectory].flatMap { $0.isEmpty ? nil : $0 }
            func descriptor(_ name: String) throws -> Int32? {
                guard let text = environment[name] else { return nil }
                guard let descriptor = Int32(text), descriptor >= 3 else {
                    throw AgentServiceError.invalidEnvironment(name: name, value: text,
                                                               reason: "not a descriptor number of 3 or more")
                }
                return descriptor
            }
            busDescriptor = try descriptor(AgentEnvironment.busDescriptor)
            socketDescriptor = try descriptor(AgentEnvironment.socketDescriptor)
            let pid = try value(AgentEnvironment.nodePID)
            guard let nodePID = Int32(pid), nodePID >= 0 else {
                throw AgentServiceError.invalidEnvironment(name: AgentEnvironment.nodePID, value: pid, reason: "not a process id")
            }
            self.nodePID = nodePID
        }
    }

    /// What a deployed workload runs on.
    private enum Job {
        case native(NativeRunner)
        case function(any FunctionRunner)
    }

    private enum Phase {
        case idle
        case starting(AgentDeployRequest)
        case running(Job, AgentDeployRequest)
        case stopping(AgentDeployRequest)
        case ended(AgentDeployRequest, Int32)
    }

    private struct State {
        var phase = Phase.idle
        var shuttingDown = false
        /// The native workload's pid: reaped by its ``ChildProcess``, never by the orphan reaper.
        var workloadPID: pid_t?
        /// The native workload's cgroup, if it has one.
        var cgroup: WorkloadCgroup?
        var endWaiters: [CheckedContinuation<Int32, Never>] = []
        /// The function's own trigger connection, when the agent has a socket channel.
        var directTriggers: DirectTriggers?
    }

    public let settings: Settings
    /// The bus connection (exposed for tests and diagnostics).
    public let connection: AgentBusConnection
    private let version: String
    private let logger: Logger
    private let state = Mutex(State())
    private let finished: AsyncStream<Void>
    private let finish: AsyncStream<Void>.Continuation
    /// Work that outlives the request that started it, carried out by ``run()``'s task group.
    private let background: AsyncStream<Background>
    private let startBackground: AsyncStream<Background>.Continuation
    /// How often the parent is checked.
    private let parentCheckInterval: Duration
    /// Loads wasm and JavaScript functions (`nex-agent` passes NexFunctions' runtime).
    private let functionRuntime: (any FunctionRuntime)?

    /// Prepares the agent; nothing happens before ``run()``.
    public init(settings: Settings, version: String = "0.1.0", logger: Logger = Logger(label: "nex-agent"),
                parentCheckInterval: Duration = .milliseconds(500), functionRuntime: (any FunctionRuntime)? = nil) throws {
        self.settings = settings
        self.functionRuntime = functionRuntime
        self.version = version
        self.logger = logger
        self.parentCheckInterval = parentCheckInterval
        var options = NATSClientOptions()
        options.flushTimeout = .seconds(3)
        options.reconnectWait = .milliseconds(100)
        options.maxReconnectWait = .seconds(1)
        if let descriptor = settings.busDescriptor {
            // Connected by the node: nothing to dial again if it goes (the node is gone then).
            options.connectedSocket = descriptor
            options.allowReconnect = false
        }
        connection = try AgentBusConnection(configuration: .init(
            busURL: settings.busURL, agentID: settings.agentID, nkeySeed: settings.nkeySeed, clientOptions: options))
        (finished, finish) = AsyncStream.makeStream(of: Void.self)
        (background, startBackground) = AsyncStream.makeStream(of: Background.self)
    }

    /// What a request hands over to ``run()`` to carry out after its reply.
    private enum Background: Sendable {
        /// Forward a native workload's output until it ends.
        case supervise(NativeRunner, AgentDeployRequest)
        /// A shutdown arrived while the workload was starting: stop it now.
        case shutdown
    }

    /// Connects, handshakes and serves the node until the workload has ended (and its
    /// `workload_undeployed` event is flushed) or ``shutdown()`` finished. Throws when the
    /// parent is not the node, or when the bus cannot be reached.
    public func run() async throws {
        // The agent's environment holds its bus seed: its workloads (same user) must not read
        // it from /proc/<pid>/environ, nor its memory.
        if nex_set_undumpable() != 0 {
            logger.warning("cannot make the agent undumpable; its workload could read its bus credentials")
        }
        // Orphans of the workload (`setsid`, double forks) are re-parented to the agent, so they
        // stay in its tree and die at stop (``DescendantProcesses``).
        do {
            try DescendantProcesses.becomeSubreaper()
        } catch {
            logger.warning("\(error); descendants that leave the workload's process group could outlive it")
        }
        // The node's death must reach the agent as a signal it can handle (it kills the
        // workload's whole tree first: ``nodeDied()``), not SIGKILL. Trapped before it is set,
        // and set before the parent check, so a node that dies in between is noticed either way.
        assert(AgentEnvironment.parentDeathSignal == SIGHUP)
        let nodeDeath = await UnixSignalsSequence(trapping: .sighup)
        if nex_set_parent_death_signal(AgentEnvironment.parentDeathSignal) != 0 {
            logger.warning("cannot set the agent's parent-death signal: \(String(cString: strerror(errno)))")
        }
        let parent = getppid()
        guard parent == settings.nodePID else {
            throw AgentServiceError.parentMismatch(expected: settings.nodePID, actual: parent)
        }
        try await connection.connect()
        let startTime = Date.now.formatted(.iso8601)
        try await connection.handshake(AgentHandshake(id: settings.agentID, pid: getpid(), version: version, startTime: startTime))
        logger.info("agent ready", metadata: ["agent": "\(settings.agentID)", "bus": "\(settings.busURL)"])

        await withDiscardingTaskGroup { group in
            group.addTask { await self.connection.serve(self) }
            group.addTask { await self.watchParent() }
            group.addTask { await self.killEverythingWhenTheNodeDies(nodeDeath) }
            group.addTask {
                // SIGTERM/SIGINT through the ServiceGroup; cancellation ends the wait.
                guard (try? await gracefulShutdown()) != nil else { return }
                self.logger.info("shutdown requested: stopping the workload")
                await self.shutdown()
            }
            group.addTask {
                await withDiscardingTaskGroup { work in
                    for await job in self.background {
                        work.addTask {
                            switch job {
                            case .supervise(let runner, let request): await self.supervise(runner, request)
                            case .shutdown: await self.shutdown()
                            }
                        }
                    }
                }
            }
            for await _ in finished {}
            await connection.stopServing()
            startBackground.finish()
            group.cancelAll()
        }
        await connection.close()
        logger.info("agent done", metadata: ["agent": "\(settings.agentID)"])
    }

    /// The node died (the agent's parent-death signal): kill the workload's whole tree at once,
    /// whatever the agent is doing, and exit.
    private func killEverythingWhenTheNodeDies(_ signals: UnixSignalsSequence) async {
        for await _ in signals {
            nodeDied()
            exit(3)
        }
    }

    /// The node is gone (its parent-death signal): SIGKILL the workload and every descendant
    /// (orphans that left its process group included: the agent is their subreaper) and its
    /// cgroup, at once and without awaiting anything. The caller then exits.
    public func nodeDied() {
        let cgroup = state.withLock { $0.cgroup }
        cgroup?.kill()
        DescendantProcesses.killAll()
        cgroup?.kill()
        logger.error("the node is gone; the workload and its descendants were killed")
    }

    /// Stops the workload gracefully (its grace period), waits for its end event, and makes
    /// ``run()`` return. Used for SIGTERM and when the node is gone.
    public func shutdown() async {
        enum Action { case finishNow, stop(Stopping), wait, nothing }
        let action = state.withLock { s -> Action in
            s.shuttingDown = true
            if let stopping = Self.beginStopping(&s) { return .stop(stopping) }
            switch s.phase {
            case .idle: return .finishNow
            case .stopping: return .wait
            case .starting, .ended, .running: return .nothing  // deploy() notices; ended already finished
            }
        }
        switch action {
        case .finishNow: finish.finish()
        case .stop(let stopping): _ = await stop(stopping)
        case .wait: _ = await waitForEnd()
        case .nothing: break
        }
    }

    /// A running workload being stopped, and how.
    private enum Stopping {
        /// A native process: SIGTERM, then SIGKILL after the grace period.
        case process(NativeRunner, grace: Duration)
        /// A function: nothing to wait for.
        case function(AgentDeployRequest)
    }

    /// Moves a running workload to `stopping` (under the state lock); nil when none runs.
    private static func beginStopping(_ s: inout State) -> Stopping? {
        switch s.phase {
        case .running(.function, let request):
            s.phase = .stopping(request)
            return .function(request)
        case .running(.native(let runner), let request):
            s.phase = .stopping(request)
            return .process(runner, grace: .milliseconds(request.stopGraceMilliseconds))
        default:
            return nil
        }
    }

    /// Stops what ``beginStopping(_:)`` chose and waits for its end; the exit code.
    private func stop(_ stopping: Stopping) async -> Int32 {
        switch stopping {
        case .function(let request):
            await endFunction(request)
            return 0
        case .process(let runner, let grace):
            logger.info("stopping workload", metadata: ["pid": "\(runner.pid)", "grace": "\(grace)"])
            await runner.stop(grace: grace)
            return await waitForEnd()
        }
    }

    // MARK: - AgentRequestHandler

    public func deploy(_ request: AgentDeployRequest) async -> AgentDeployResponse {
        let busy = state.withLock { s -> String? in
            if s.shuttingDown { return "agent \(settings.agentID) is shutting down" }
            switch s.phase {
            case .idle:
                s.phase = .starting(request)
                return nil
            case .starting(let current), .running(_, let current), .stopping(let current), .ended(let current, _):
                return "agent \(settings.agentID) already runs workload \(current.workloadID); an agent takes one deploy"
            }
        }
        if let busy {
            logger.warning("deploy refused", metadata: ["workload": "\(request.workloadID)", "reason": "\(busy)"])
            return AgentDeployResponse(accepted: false, message: busy)
        }
        if request.workloadType.isFunction {
            return await deployFunction(request, type: request.workloadType)
        }
        let runner: NativeRunner
        let workload: NativeRunner.Workload
        do {
            workload = try validate(request)
            do {
                runner = try await NativeRunner.start(workload)
            } catch {
                workload.cgroup?.remove()
                throw error
            }
        } catch {
            return refuse(request, error)
        }
        state.withLock { s in
            s.workloadPID = runner.pid
            s.cgroup = workload.cgroup
        }
        await running(.native(runner), request, message: "started as pid \(runner.pid)")
        return AgentDeployResponse(
            accepted: true, message: "workload \(request.workloadName) (\(request.workloadID)) started as pid \(runner.pid)",
            pid: runner.pid, limitsApplied: runner.limitsApplied)
    }

    /// Records the deployed workload as running and announces it (`workload_deployed`); a
    /// native process is then supervised until it ends. A shutdown that arrived during the
    /// start stops it again at once.
    private func running(_ job: Job, _ request: AgentDeployRequest, message: String) async {
        let stopNow = state.withLock { s in
            s.phase = .running(job, request)
            return s.shuttingDown
        }
        logger.info("workload running", metadata: ["workload": "\(request.workloadID)", "detail": "\(message)"])
        try? await connection.publishEvent(AgentVerb.workloadDeployed, AgentWorkloadEvent(
            workloadID: request.workloadID, workloadName: request.workloadName, code: 0, message: message))
        if case .native(let runner) = job { startBackground.yield(.supervise(runner, request)) }
        if stopNow { startBackground.yield(.shutdown) }
    }

    /// Back to idle after a refused deploy (the agent may take another one).
    private func refuse(_ request: AgentDeployRequest, _ error: any Error) -> AgentDeployResponse {
        let shuttingDown = state.withLock { s in
            s.phase = .idle
            return s.shuttingDown
        }
        if shuttingDown { finish.finish() }
        logger.warning("deploy refused", metadata: ["workload": "\(request.workloadID)", "reason": "\(error)"])
        return AgentDeployResponse(accepted: false, message: "\(error)")
    }

    /// Loads (validates and compiles) a wasm or JavaScript function; it then runs per trigger.
    private func deployFunction(_ request: AgentDeployRequest, type: WorkloadType) async -> AgentDeployResponse {
        let runner: any FunctionRunner
        do {
            try checkCommon(request)
            guard let functionRuntime else {
                throw Rejection("this agent runs no \(type.rawValue) functions")
            }
            let hostServices = AgentHostServices(client: connection.client, agentID: settings.agentID,
                                                 namespace: request.namespace, workloadName: request.workloadName)
            runner = try await functionRuntime.load(
                FunctionDefinition(type: type, workloadName: request.workloadName, namespace: request.namespace,
                                   artifactPath: request.artifactPath, environment: request.environment),
                hostServices: hostServices)
        } catch {
            return refuse(request, error)
        }
        var direct: DirectTriggers?
        if let channel = settings.socketDescriptor {
            do {
                direct = try DirectTriggers(
                    channel: channel, runner: runner,
                    workload: AgentWorkloadEvent(workloadID: request.workloadID, workloadName: request.workloadName, code: 0),
                    bus: connection, logger: logger)
            } catch {
                logger.warning("no trigger key: the function is triggered through the node", metadata: ["error": "\(error)"])
            }
        }
        state.withLock { $0.directTriggers = direct }
        await running(.function(runner), request, message: "\(type.rawValue) function loaded")
        return AgentDeployResponse(accepted: true,
                                   message: "\(type.rawValue) function \(request.workloadName) (\(request.workloadID)) loaded",
                                   triggerKey: direct?.key.publicKey)
    }

    /// A function has no process to wait for: undeploying ends it at once, once its own
    /// trigger connection (if any) has answered what it took.
    private func endFunction(_ request: AgentDeployRequest) async {
        await state.withLock({ $0.directTriggers })?.stop()
        await ended(request, code: 0, message: "function undeployed")
    }

    public func serveTriggers(_ setup: AgentTriggerSetup) async -> AgentTriggerSetupResponse {
        let direct = state.withLock { s -> DirectTriggers? in
            guard case .running(.function, _) = s.phase else { return nil }
            return s.directTriggers
        }
        guard let direct else {
            return AgentTriggerSetupResponse(serving: false, message: "agent \(settings.agentID) serves no function triggers")
        }
        return await direct.serve(setup)
    }

    /// The workload is over: report `workload_undeployed` with its code (flushed, so the node
    /// has it before the agent exits), wake whoever waits for the end, and finish ``run()``.
    private func ended(_ request: AgentDeployRequest, code: Int32, message: String) async {
        do {
            try await connection.publishEvent(AgentVerb.workloadUndeployed, AgentWorkloadEvent(
                workloadID: request.workloadID, workloadName: request.workloadName, code: code, message: message))
            try await connection.flush()
        } catch {
            logger.error("cannot report the workload's end", metadata: ["workload": "\(request.workloadID)", "error": "\(error)"])
        }
        let waiters = state.withLock { s in
            s.phase = .ended(request, code)
            defer { s.endWaiters = [] }
            return s.endWaiters
        }
        waiters.forEach { $0.resume(returning: code) }
        finish.finish()
    }

    public func trigger(subject: String, payload: ByteBuffer, traceParent: String?) async -> AgentTriggerResult {
        let runner = state.withLock { s -> (any FunctionRunner)? in
            if case .running(.function(let runner), _) = s.phase { return runner }
            return nil
        }
        guard let runner else { return .failed("agent \(settings.agentID) runs no function") }
        let started = ContinuousClock.now
        do {
            let result = try await runner.invoke(subject: subject, payload: Array(payload.readableBytesView),
                                                 traceParent: traceParent)
            return .reply(result, runtimeNanoseconds: UInt64(started.duration(to: .now).nanoseconds))
        } catch {
            return .failed(error.message)
        }
    }

    public func undeploy() async -> AgentUndeployResponse {
        enum Action { case nothing, starting, stop(Stopping), wait, ended(Int32) }
        while true {
            let action = state.withLock { s -> Action in
                if let stopping = Self.beginStopping(&s) { return .stop(stopping) }
                switch s.phase {
                case .idle, .running: return .nothing
                case .starting: return .starting
                case .stopping: return .wait
                case .ended(_, let code): return .ended(code)
                }
            }
            switch action {
            case .nothing:
                return AgentUndeployResponse(stopped: false, message: "agent \(settings.agentID) runs no workload")
            case .starting:
                try? await Task.sleep(for: .milliseconds(10))  // a start takes milliseconds
                continue
            case .stop(.function(let request)):
                _ = await stop(.function(request))
                return AgentUndeployResponse(stopped: true, exitCode: 0, message: "function undeployed")
            case .stop(let stopping):
                let code = await stop(stopping)
                return AgentUndeployResponse(stopped: true, exitCode: code, message: Self.describe(code))
            case .wait:
                let code = await waitForEnd()
                return AgentUndeployResponse(stopped: true, exitCode: code, message: Self.describe(code))
            case .ended(let code):
                return AgentUndeployResponse(stopped: true, exitCode: code, message: "already " + Self.describe(code))
            }
        }
    }

    public func ping() async -> AgentPingResponse {
        state.withLock { s in
            switch s.phase {
            case .idle: return AgentPingResponse(id: settings.agentID, workloadID: nil, running: false)
            case .running(_, let request): return AgentPingResponse(id: settings.agentID, workloadID: request.workloadID, running: true)
            case .starting(let request), .stopping(let request), .ended(let request, _):
                return AgentPingResponse(id: settings.agentID, workloadID: request.workloadID, running: false)
            }
        }
    }

    // MARK: - Workload

    /// "exited with code N" / "killed by signal N".
    static func describe(_ code: Int32) -> String {
        code >= 0 ? "exited with code \(code)" : "killed by signal \(-code)"
    }

    private struct Rejection: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Checks the request and turns it into what the runner needs.
    private func validate(_ request: AgentDeployRequest) throws -> NativeRunner.Workload {
        try checkCommon(request)
        var unavailable: String?
        let cgroup = WorkloadCgroup.create(name: request.workloadID, limits: request.limits, unavailable: &unavailable)
        if let unavailable {
            logger.info("no cgroup for the workload; rlimits only", metadata: ["workload": "\(request.workloadID)", "reason": "\(unavailable)"])
        }
        return NativeRunner.Workload(
            workloadID: request.workloadID, namespace: request.namespace, workloadName: request.workloadName,
            executable: request.artifactPath, arguments: request.argv, environment: request.environment,
            limits: request.limits, cgroup: cgroup, workingDirectory: settings.workDirectory ?? settings.directory,
            killsDescendantsOnExit: true)
    }

    /// What every deploy needs: ids and an artifact inside the agent's directory.
    private func checkCommon(_ request: AgentDeployRequest) throws {
        for (name, value) in [("workload_id", request.workloadID), ("workload_name", request.workloadName),
                              ("namespace", request.namespace)] where value.isEmpty {
            throw Rejection("deploy request for agent \(settings.agentID) has no \(name)")
        }
        try checkInsideDirectory(request.artifactPath)
    }

    /// The artifact must lie inside the agent's directory, also after resolving symlinks.
    private func checkInsideDirectory(_ path: String) throws {
        let directory = settings.directory
        let outside = Rejection("workload artifact \(path) is outside the agent directory \(directory)")
        guard path.hasPrefix("/"), !path.split(separator: "/").contains("..") else { throw outside }
        guard let resolvedDirectory = Self.realPath(directory) else {
            throw Rejection("agent directory \(directory) cannot be resolved: \(String(cString: strerror(errno)))")
        }
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        guard path.hasPrefix(base) || path.hasPrefix(resolvedDirectory + "/") else { throw outside }
        guard let resolved = Self.realPath(path) else {
            if errno == ENOENT || errno == ENOTDIR { throw NativeRunnerError.artifactMissing(path: path) }
            throw Rejection("workload artifact \(path) cannot be resolved: \(String(cString: strerror(errno)))")
        }
        guard resolved.hasPrefix(resolvedDirectory + "/") else { throw outside }
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Forwards the workload's output until it ends, then reports the end and finishes the agent.
    private func supervise(_ runner: NativeRunner, _ request: AgentDeployRequest) async {
        let connection = connection
        let rate = request.logRate
        let limiter = Mutex(LogRateLimiter(rate: rate))
        let code = await runner.run { stream, lines in
            var admitted: [ByteBuffer] = []
            admitted.reserveCapacity(lines.count)
            for line in lines {
                switch limiter.withLock({ $0.admit(bytes: line.readableBytes) }) {
                case .drop:
                    continue
                case .forward(let notice):
                    if let notice {
                        try? await connection.publishLogs(admitted, stream: stream.rawValue)
                        admitted.removeAll(keepingCapacity: true)
                        try? await Self.publish(notice, rate: rate, on: connection)
                    }
                    admitted.append(line)
                }
            }
            try? await connection.publishLogs(admitted, stream: stream.rawValue)
        }
        if let notice = limiter.withLock({ $0.finalNotice() }) { try? await Self.publish(notice, rate: rate, on: connection) }
        let message = Self.describe(code)
        logger.info("workload ended", metadata: ["workload": "\(request.workloadID)", "result": "\(message)"])
        await ended(request, code: code, message: message)
    }

    private static func publish(_ notice: LogRateLimiter.Notice, rate: LogRate,
                                on connection: AgentBusConnection) async throws {
        try await connection.publishDroppedLines(
            "nex-agent: \(notice.dropped) output lines dropped (log rate limit \(rate.linesPerSecond) lines/s, "
                + "\(rate.bytesPerSecond) bytes/s; \(notice.total) dropped in all)", total: notice.total)
    }

    private func waitForEnd() async -> Int32 {
        await withCheckedContinuation { continuation in
            let code = state.withLock { s -> Int32? in
                if case .ended(_, let code) = s.phase { return code }
                s.endWaiters.append(continuation)
                return nil
            }
            if let code { continuation.resume(returning: code) }
        }
    }

    /// Shuts the agent down once its parent is no longer the node; meanwhile reaps the
    /// workload's orphans that were re-parented to the agent.
    private func watchParent() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: parentCheckInterval)
            guard !Task.isCancelled else { return }
            // Not while a workload starts: its pid is not recorded yet, and it must be reaped
            // by its ChildProcess alone.
            let keeping = state.withLock { s -> Set<pid_t>? in
                if case .starting = s.phase { return nil }
                return s.workloadPID.map { [$0] } ?? []
            }
            if let keeping { DescendantProcesses.reapOrphans(keeping: keeping) }
            let parent = getppid()
            if parent != settings.nodePID {
                logger.error("the node is gone; stopping", metadata: ["expected": "\(settings.nodePID)", "parent": "\(parent)"])
                await shutdown()
                return
            }
        }
    }
}
