import NexWorkloads
#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import NATSWire
import NexAgentBus
import NIOCore

/// Starts and watches the node's `nex-agent` processes.
///
/// Keeps a warm pool of `machine_pool_size` agents that have completed their handshake, hands
/// one out per deploy (the very agent whose handshake was recorded), notices agents that exit
/// or stop answering pings, and refills the pool. Agents are started with a parent-death
/// signal (SIGHUP: the agent kills its workload's whole tree and exits) and in their own
/// process group, so they never outlive the node. While the node shuts down, a ping cut
/// short by cancellation is not taken for a dead agent.
public actor AgentSupervisor {
    public struct Settings: Sendable {
        public var agentExecutable: String
        public var stateDirectory: String
        public var poolSize: Int
        public var handshakeTimeout: Duration
        public var pingInterval: Duration = .seconds(5)
        public var pingTimeout: Duration
        public var logLevel: String?
        /// The node is a child subreaper: kill what is re-parented to it (the escaped
        /// descendants of a workload whose agent died), keeping its own children.
        public var killsOrphans = false

        public init(agentExecutable: String, stateDirectory: String, poolSize: Int, handshakeTimeout: Duration,
                    pingTimeout: Duration, logLevel: String? = nil) {
            self.agentExecutable = agentExecutable; self.stateDirectory = stateDirectory; self.poolSize = poolSize
            self.handshakeTimeout = handshakeTimeout; self.pingTimeout = pingTimeout; self.logLevel = logLevel
        }
    }

    private let settings: Settings
    private let bus: AgentBus
    private let connection: NATSClient
    private let logger: Logger
    private let notices: AsyncStream<AgentNotice>.Continuation
    /// Reports of agents that ended or were killed; the workload manager reads them.
    nonisolated let noticeStream: AsyncStream<AgentNotice>

    private var agents: [String: AgentProcess] = [:]
    /// Handshaken, unassigned agents, oldest first.
    private var warm: [String] = []
    private var assigned: Set<String> = []
    private var handshakes: [String: AgentHandshake] = [:]
    private var handshakeWaiters: [String: CheckedContinuation<Void, any Error>] = [:]
    private var spawning = 0
    private var stopping = false
    private var tasks: [Task<Void, Never>] = []

    public init(settings: Settings, bus: AgentBus, connection: NATSClient, logger: Logger) {
        self.settings = settings
        self.bus = bus
        self.connection = connection
        self.logger = logger
        (noticeStream, notices) = AsyncStream.makeStream(of: AgentNotice.self)
    }

    /// Starts answering handshakes, watching agents, and fills the pool.
    public func start() async throws {
        try FileManager.default.createDirectory(atPath: agentsDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let handshakes = try await connection.subscribe(to: AgentBusSubject.toHost("*", AgentVerb.handshake))
        try await connection.flush()
        tasks.append(Task { [weak self] in
            for await message in handshakes { await self?.handleHandshake(message) }
        })
        tasks.append(Task { [weak self] in await self?.watch() })
        tasks.append(Task { [weak self] in await self?.pingLoop() })
        fillPool()
    }

    private var agentsDirectory: String { settings.stateDirectory + "/agents" }

    /// Handshaken agents waiting for work.
    public var warmCount: Int { warm.count }
    /// Every agent process alive.
    public var agentCount: Int { agents.count }

    /// The process ids of every agent (for tests and diagnostics).
    public var agentPIDs: [Int32] { agents.values.map(\.process.pid) }

    // MARK: Pool

    private func fillPool() {
        guard !stopping else { return }
        while warm.count + spawning < settings.poolSize {
            spawning += 1
            Task { await self.spawnIntoPool() }
        }
    }

    private func spawnIntoPool() async {
        defer { spawning -= 1 }
        do {
            let agent = try await spawn()
            try await awaitHandshake(agent.id)
            if stopping || agents[agent.id] == nil { return }
            warm.append(agent.id)
        } catch {
            logger.error("agent did not start", metadata: ["error": "\(error)"])
            try? await Task.sleep(for: .seconds(1))  // a broken agent binary must not spin
            spawning -= 1
            fillPool()
            spawning += 1
        }
    }

    /// An agent that completed its handshake, taken out of the pool; the pool is refilled.
    func acquire() async throws -> AgentProcess {
        if let id = warm.first {
            warm.removeFirst()
            assigned.insert(id)
            fillPool()
            if let agent = agents[id] { return agent }
        }
        // The pool is empty (a burst of deploys): start one for this deploy.
        let agent = try await spawn()
        try await awaitHandshake(agent.id)
        guard agents[agent.id] != nil else { throw AgentSupervisorError.agentExited(id: agent.id) }
        assigned.insert(agent.id)
        return agent
    }

    private func spawn() async throws -> AgentProcess {
        guard !stopping else { throw AgentSupervisorError.stopping }
        let id = RandomID.make(length: 16)
        let key = try NKeyPair.generate(.user)
        let directory = agentsDirectory + "/" + id
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        await bus.addUser(publicKey: key.publicKey, permissions: .agent(id))
        var environment = [
            AgentEnvironment.busURL: bus.url,
            AgentEnvironment.agentID: id,
            AgentEnvironment.nkeySeed: key.seed,
            AgentEnvironment.directory: directory,
            AgentEnvironment.nodePID: String(getpid()),
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
        ]
        if let level = settings.logLevel { environment["NEX_LOG_LEVEL"] = level }
        let process: ChildProcess
        do {
            process = try ChildProcess(
                executable: settings.agentExecutable, arguments: [], environment: environment,
                // SIGHUP, not SIGKILL: the agent handles it by killing its workload's whole tree.
                options: SpawnOptions(newProcessGroup: true, parentDeathSignal: AgentEnvironment.parentDeathSignal,
                                      stdout: .fileDescriptor(2), stderr: .fileDescriptor(2)))
        } catch {
            await bus.removeUser(publicKey: key.publicKey)
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        let agent = AgentProcess(id: id, key: key, process: process, directory: directory)
        agents[id] = agent
        logger.debug("agent started", metadata: ["agent": "\(id)", "pid": "\(process.pid)"])
        return agent
    }

    // MARK: Handshakes

    private func handleHandshake(_ message: NATSMessage) async {
        // Only agent <id> may publish on hostint.<id>.*: the bus enforces it.
        let tokens = message.subject.split(separator: ".")
        guard tokens.count == 3, let reply = message.replyTo else { return }
        let id = String(tokens[1])
        guard agents[id] != nil else { return }
        guard let handshake = try? JSONDecoder().decode(AgentHandshake.self, from: Data(message.payload.readableBytesView)),
              handshake.id == id
        else {
            logger.warning("agent sent a malformed handshake", metadata: ["agent": "\(id)"])
            return
        }
        handshakes[id] = handshake
        try? await connection.publish("{}", to: reply)
        handshakeWaiters.removeValue(forKey: id)?.resume()
    }

    private func awaitHandshake(_ id: String) async throws {
        if handshakes[id] != nil { return }
        let timeout = settings.handshakeTimeout
        let timer = Task {
            try await Task.sleep(for: timeout)
            self.handshakeTimedOut(id)
        }
        defer { timer.cancel() }
        try await withCheckedThrowingContinuation { continuation in
            handshakeWaiters[id] = continuation
        }
    }

    private func handshakeTimedOut(_ id: String) {
        guard let waiter = handshakeWaiters.removeValue(forKey: id) else { return }
        logger.warning("agent handshake timed out; killing it", metadata: ["agent": "\(id)"])
        agents[id]?.process.signalGroup(SIGKILL)
        waiter.resume(throwing: AgentSupervisorError.handshakeTimeout(id: id, after: settings.handshakeTimeout))
    }

    // MARK: Watching

    private func watch() async {
        var round = 0
        var suspects: Set<pid_t> = []
        while !Task.isCancelled {
            for (id, agent) in agents {
                if let status = agent.process.exitStatus { await ended(id, status: status) }
            }
            // A workload that kills its own agent leaves its escaped descendants to the
            // nearest subreaper, the node: end them (checked once a second; see NexNode.run).
            round += 1
            if settings.killsOrphans, round % 20 == 0 {
                suspects = DescendantProcesses.killOrphans(keeping: ChildProcess.spawnedPIDs, suspects: suspects)
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    private func ended(_ id: String, status: Int32) async {
        guard let agent = agents.removeValue(forKey: id) else { return }
        warm.removeAll { $0 == id }
        let wasAssigned = assigned.remove(id) != nil
        handshakes[id] = nil
        handshakeWaiters.removeValue(forKey: id)?.resume(throwing: AgentSupervisorError.agentExited(id: id))
        agent.process.signalGroup(SIGKILL)  // anything it left behind in its group
        await bus.removeUser(publicKey: agent.key.publicKey)
        try? FileManager.default.removeItem(atPath: agent.directory)
        if !stopping {
            if status != 0 || !wasAssigned {
                logger.warning("agent exited", metadata: ["agent": "\(id)", "status": "\(status)"])
            }
            notices.yield(.exited(agentID: id, status: status))
            fillPool()
        }
    }

    private func pingLoop() async {
        while !Task.isCancelled && !stopping {
            try? await Task.sleep(for: settings.pingInterval)
            for id in Array(handshakes.keys) {
                if Task.isCancelled || stopping { return }
                let subject = AgentBusSubject.toAgent(id, AgentVerb.ping)
                do {
                    _ = try await connection.request(ByteBuffer(), to: subject,
                                                     timeout: .nanoseconds(settings.pingTimeout.nanoseconds))
                } catch {
                    // Cancelled (the node shuts down): not a dead agent. shutdown() stops the
                    // agents gracefully; killing one here would cut its workload's grace period.
                    if error is CancellationError || Task.isCancelled || stopping { return }
                    guard let agent = agents[id], agent.process.isRunning else { continue }
                    logger.warning("agent does not answer pings; killing it", metadata: ["agent": "\(id)", "error": "\(error)"])
                    notices.yield(.unresponsive(agentID: id))
                    agent.process.signalGroup(SIGKILL)
                }
            }
        }
    }

    /// Stops an agent (its workload is already stopped or gone) and forgets it.
    func retire(_ id: String) async {
        guard let agent = agents[id] else { return }
        await agent.process.terminate(grace: .seconds(2))
        await ended(id, status: agent.process.exitStatus ?? 0)
    }

    /// Stops every agent: SIGTERM (they stop their workloads gracefully), then SIGKILL after `grace`.
    public func shutdown(grace: Duration) async {
        stopping = true
        for task in tasks { task.cancel() }
        for (_, waiter) in handshakeWaiters { waiter.resume(throwing: AgentSupervisorError.stopping) }
        handshakeWaiters.removeAll()
        await withTaskGroup(of: Void.self) { group in
            for agent in agents.values {
                group.addTask { await agent.process.terminate(grace: grace) }
            }
        }
        for agent in agents.values {
            await bus.removeUser(publicKey: agent.key.publicKey)
            try? FileManager.default.removeItem(atPath: agent.directory)
        }
        agents.removeAll()
        warm.removeAll()
        notices.finish()
    }
}


/// Why the supervisor could not provide an agent.
public enum AgentSupervisorError: Error, Sendable, CustomStringConvertible {
    case handshakeTimeout(id: String, after: Duration)
    case agentExited(id: String)
    case stopping

    public var description: String {
        switch self {
        case .handshakeTimeout(let id, let after): "agent \(id) did not complete its handshake within \(after)"
        case .agentExited(let id): "agent \(id) exited before it could take the workload"
        case .stopping: "the node is stopping"
        }
    }
}
