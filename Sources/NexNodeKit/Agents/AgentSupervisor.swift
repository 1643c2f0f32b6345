import NexWorkloads
#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import NATSWire
import NexAgentBus
import NexControl
import NIOCore
import ServiceLifecycle

/// Starts and watches the node's `nex-agent` processes.
///
/// Keeps a warm pool of `machine_pool_size` agents that have completed their handshake, hands
/// one out per deploy (the very agent whose handshake was recorded), notices agents that exit
/// or stop answering pings, and refills the pool. Agents are started with a parent-death
/// signal (SIGHUP: the agent kills its workload's whole tree and exits) and in their own
/// process group, so they never outlive the node. While the node shuts down, a ping cut
/// short by cancellation is not taken for a dead agent.
///
/// A `Service`: ``start()`` subscribes and asks for the pool's agents; ``run()`` does the work
/// (handshakes, watching, pings, spawns, each a child task) until a graceful shutdown, then stops
/// every agent. The lifecycle decisions are ``AgentStateMachine``'s; the actor carries them out.
public actor AgentSupervisor: Service {
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
        /// Start each agent in a sandbox of its own; nil: agents are plain processes of the
        /// node's user (`no_sandbox`).
        public var sandbox: NodeSandbox?
        /// Give each agent a socket channel (``AgentSocketChannel``), so its function can serve
        /// its triggers on a connection the node makes (`direct_triggers`).
        public var socketChannels = false

        public init(agentExecutable: String, stateDirectory: String, poolSize: Int, handshakeTimeout: Duration,
                    pingTimeout: Duration, logLevel: String? = nil) {
            self.agentExecutable = agentExecutable; self.stateDirectory = stateDirectory; self.poolSize = poolSize
            self.handshakeTimeout = handshakeTimeout; self.pingTimeout = pingTimeout; self.logLevel = logLevel
        }
    }

    private let settings: Settings
    private let bus: AgentBus
    private let connection: BusLink
    private let logger: Logger
    private let notices: AsyncStream<AgentNotice>.Continuation
    /// Reports of agents that ended or were killed; the workload manager reads them.
    nonisolated let noticeStream: AsyncStream<AgentNotice>

    /// The agents' lifecycles and the warm pool: the supervisor feeds it events and carries
    /// out what it returns.
    private var machine: AgentStateMachine
    /// The processes started (an agent is here from its spawn to its clean-up).
    private var agents: [String: AgentProcess] = [:]
    /// Deploys waiting for the handshake of an agent started for them (the pool was empty).
    private var handshakeWaiters: [String: CheckedContinuation<Void, any Error>] = [:]
    private var handshakeSubscription: BusLinkSubscription?
    /// Pool agents to start: ``run()`` starts each in a child task.
    private let spawnRequests: AsyncStream<String>
    private let spawnRequestsSink: AsyncStream<String>.Continuation

    public init(settings: Settings, bus: AgentBus, connection: BusLink, logger: Logger) {
        self.settings = settings
        self.bus = bus
        self.connection = connection
        self.logger = logger
        self.machine = AgentStateMachine(poolSize: settings.poolSize, handshakeTimeout: settings.handshakeTimeout)
        (noticeStream, notices) = AsyncStream.makeStream(of: AgentNotice.self)
        (spawnRequests, spawnRequestsSink) = AsyncStream.makeStream(of: String.self)
    }

    /// Subscribes to handshakes (confirmed by the bus before this returns) and asks for the
    /// pool's agents; ``run()`` starts them.
    public func start() async throws {
        try FileManager.default.createDirectory(atPath: agentsDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        handshakeSubscription = try await connection.subscribe(to: AgentBusSubject.toHost("*", AgentVerb.handshake))
        perform(machine.fillPool())
    }

    /// Answers handshakes, watches and pings the agents and starts the pool's, each in a child
    /// task, until a graceful shutdown (or cancellation); then stops every agent
    /// (``shutdown(grace:)``). Nothing it started outlives it.
    public func run() async throws {
        guard let handshakes = handshakeSubscription else { return await shutdown(grace: .seconds(2)) }
        let requests = spawnRequests
        await withDiscardingTaskGroup { group in
            group.addTask { for await message in handshakes { await self.handleHandshake(message) } }
            group.addTask { await self.watch() }
            group.addTask { await self.pingLoop() }
            group.addTask {
                await withDiscardingTaskGroup { spawns in
                    for await id in requests { spawns.addTask { await self.spawnIntoPool(id) } }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await shutdown(grace: .seconds(2))
    }

    private var agentsDirectory: String { settings.stateDirectory + "/agents" }

    /// Handshaken agents waiting for work.
    public var warmCount: Int { machine.warm.count }
    /// Every agent process alive.
    public var agentCount: Int { agents.count }

    /// What each of `agentIDs` uses now (those still alive).
    func usage(of agentIDs: [String]) -> [String: ResourceUsage] {
        var usage: [String: ResourceUsage] = [:]
        for id in agentIDs { if let agent = agents[id] { usage[id] = agent.usage() } }
        return usage
    }

    /// The process ids of every agent (for tests and diagnostics).
    public var agentPIDs: [Int32] { agents.values.map(\.process.pid) }

    // MARK: Carrying out the machine's actions

    private func perform(_ action: AgentStateMachine.Action) {
        switch action {
        case .none, .handOut, .spawnDedicated, .acceptHandshake, .cleanUp:
            break  // handled where they are returned (they need an await or a caller)
        case .spawnForPool(let count):
            for _ in 0..<count {
                let id = RandomID.make(length: 16)
                guard machine.spawnStarted(id, for: .pool) else { return }
                spawnRequestsSink.yield(id)
            }
        case .kill(let id, let unresponsive, let failWaiter):
            if unresponsive {
                notices.yield(.unresponsive(agentID: id))
            } else if failWaiter != nil {
                logger.warning("agent handshake timed out; killing it", metadata: ["agent": "\(id)"])
            }
            agents[id]?.process.signalGroup(SIGKILL)
            if let failWaiter { handshakeWaiters.removeValue(forKey: id)?.resume(throwing: failWaiter) }
        case .terminate(let id):
            // Started while the node began to stop: it has no workload, so SIGTERM is enough
            // (its exit needs no watching: the node is going).
            agents[id]?.process.signalGroup(SIGTERM)
        case .terminateAll:
            break  // shutdown(grace:) waits for them
        }
    }

    // MARK: Pool

    private func spawnIntoPool(_ id: String) async {
        do {
            let agent = try await spawn(id)
            agents[agent.id] = agent
            perform(machine.spawned(id, now: .now))
        } catch {
            logger.error("agent did not start", metadata: ["error": "\(error)"])
            try? await Task.sleep(for: .seconds(1))  // a broken agent binary must not spin
            perform(machine.spawnFailed(id))
        }
    }

    /// An agent that completed its handshake, taken out of the pool (the pool is refilled); or
    /// one started for this deploy when the pool is empty or the workload wants no network.
    func acquire(network: WorkloadNetwork = .host) async throws -> AgentProcess {
        switch machine.acquire(dedicated: network == .none) {
        case .handOut(let id, let refill):
            perform(.spawnForPool(count: refill))
            guard let agent = agents[id] else { throw AgentSupervisorError.agentExited(id: id) }
            return agent
        case .spawnDedicated:
            // The pool is empty (a burst of deploys): start one for this deploy.
            let id = RandomID.make(length: 16)
            guard machine.spawnStarted(id, for: .dedicated) else { throw AgentSupervisorError.stopping }
            let agent: AgentProcess
            do {
                agent = try await spawn(id, network: network)
            } catch {
                _ = machine.spawnFailed(id)
                throw error
            }
            agents[id] = agent
            let spawned = machine.spawned(id, now: .now)
            perform(spawned)
            if case .terminate = spawned { throw AgentSupervisorError.stopping }
            try await awaitHandshake(id)
            guard agents[id] != nil else { throw AgentSupervisorError.agentExited(id: id) }
            return agent
        default:
            throw AgentSupervisorError.stopping
        }
    }

    private func spawn(_ id: String, network: WorkloadNetwork = .host) async throws -> AgentProcess {
        guard !machine.isStopping else { throw AgentSupervisorError.stopping }
        guard network == .host || settings.sandbox != nil else { throw AgentSupervisorError.networkNeedsSandbox }
        let key = try NKeyPair.generate(.user)
        let directory = agentsDirectory + "/" + id
        var identity: SandboxIdentity?
        if let sandbox = settings.sandbox {
            guard let free = sandbox.identities.acquire() else {
                throw AgentSupervisorError.noSandboxIdentity(range: sandbox.identities.uids.description)
            }
            identity = free
        }
        // A sandboxed agent runs as another uid: it reads its directory (and the artifact the
        // node places there) as "other". The directory above stays 0700.
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: identity == nil ? 0o700 : 0o755])
        } catch {
            if let identity { settings.sandbox?.identities.release(identity) }
            throw error
        }
        await bus.addUser(publicKey: key.publicKey, permissions: .agent(id))
        var environment = [
            AgentEnvironment.busURL: bus.url,
            AgentEnvironment.agentID: id,
            AgentEnvironment.nkeySeed: key.seed,
            AgentEnvironment.directory: directory,
            AgentEnvironment.nodePID: identity == nil ? String(getpid()) : "0",
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
        ]
        if let level = settings.logLevel { environment["NEX_LOG_LEVEL"] = level }
        // SIGHUP, not SIGKILL: the agent handles it by killing its workload's whole tree.
        var options = SpawnOptions(newProcessGroup: true, parentDeathSignal: AgentEnvironment.parentDeathSignal,
                                   stdout: .fileDescriptor(2), stderr: .fileDescriptor(2))
        var cgroup: SandboxCgroup?
        var busSocket: BusSocketPair?
        var socketChannel: AgentSocketChannel?
        defer {
            busSocket?.closeAgentEnd()
            socketChannel?.closeAgentEnd()
        }
        let process: ChildProcess
        do {
            if let sandbox = settings.sandbox, let identity {
                // Its bus connection comes made: a socket pair, not the loopback listener (which
                // the workload could reach too; and a sandbox may have no network).
                let pair = try BusSocketPair()
                busSocket = pair
                try await bus.adopt(connectedSocket: pair.nodeEnd)
                options.passedDescriptors = [pair.agentEnd]
                environment[AgentEnvironment.busDescriptor] = "3"
                environment[AgentEnvironment.busURL] = AgentEnvironment.socketPairURL
                environment[AgentEnvironment.workDirectory] = NodeSandbox.workDirectory
                options.sandbox = sandbox.sandbox(for: identity, agentExecutable: settings.agentExecutable,
                                                  agentDirectory: directory)
                options.sandbox?.privateNetwork = network == .none
                if let hierarchies = sandbox.cgroups {
                    cgroup = try SandboxCgroup.create(name: id, in: hierarchies)
                    options.cgroupProcsPaths = cgroup?.procsFiles ?? []
                }
            }
            if settings.socketChannels {
                let channel = try AgentSocketChannel()
                socketChannel = channel
                options.passedDescriptors.append(channel.agentEnd)
                environment[AgentEnvironment.socketDescriptor] = String(2 + options.passedDescriptors.count)
            }
            process = try ChildProcess(executable: settings.agentExecutable, arguments: [], environment: environment,
                                       options: options)
        } catch {
            socketChannel?.close()
            await bus.removeUser(publicKey: key.publicKey)
            try? FileManager.default.removeItem(atPath: directory)
            cgroup?.remove()
            if let identity { settings.sandbox?.identities.release(identity) }
            throw error
        }
        logger.debug("agent started", metadata: ["agent": "\(id)", "pid": "\(process.pid)", "uid": "\(identity?.uid ?? getuid())"])
        return AgentProcess(id: id, key: key, process: process, directory: directory, sandboxIdentity: identity,
                            cgroup: cgroup, socketChannel: socketChannel)
    }

    // MARK: Handshakes

    private func handleHandshake(_ message: NATSMessage) async {
        // Only agent <id> may publish on hostint.<id>.*: the bus enforces it.
        let tokens = message.subject.split(separator: ".")
        guard tokens.count == 3, let reply = message.replyTo else { return }
        let id = String(tokens[1])
        guard machine.state(of: id) != nil else { return }
        guard let handshake = try? JSONDecoder().decode(AgentHandshake.self, from: Data(message.payload.readableBytesView)),
              handshake.id == id
        else {
            logger.warning("agent sent a malformed handshake", metadata: ["agent": "\(id)"])
            return
        }
        guard case .acceptHandshake(_, let handOut) = machine.handshakeReceived(id) else { return }
        try? connection.publish(Array("{}".utf8), to: reply)
        if handOut { handshakeWaiters.removeValue(forKey: id)?.resume() }
    }

    /// Waits for the handshake of an agent started for a deploy (the machine's deadline ends
    /// the wait: ``watch()`` feeds it the time).
    private func awaitHandshake(_ id: String) async throws {
        switch machine.state(of: id) {
        case .assigned?: return
        case .spawning?, .awaitingHandshake?: break
        default: throw AgentSupervisorError.agentExited(id: id)
        }
        try await withCheckedThrowingContinuation { continuation in
            handshakeWaiters[id] = continuation
        }
    }

    // MARK: Watching

    private func watch() async {
        var round = 0
        var suspects: Set<pid_t> = []
        while !Task.isCancelled {
            for (id, agent) in agents {
                if let status = agent.process.exitStatus { await ended(id, status: status) }
            }
            for action in machine.tick(now: .now) { perform(action) }
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
        let action = machine.exited(id, status: status)
        guard let agent = agents.removeValue(forKey: id) else { return }
        var report = false, warn = false, refill = 0
        if case .cleanUp(_, let reports, let warns, _, let count) = action { (report, warn, refill) = (reports, warns, count) }
        handshakeWaiters.removeValue(forKey: id)?.resume(throwing: AgentSupervisorError.agentExited(id: id))
        agent.process.signalGroup(SIGKILL)  // anything it left behind in its group
        await bus.removeUser(publicKey: agent.key.publicKey)
        try? FileManager.default.removeItem(atPath: agent.directory)
        release(agent)
        if warn { logger.warning("agent exited", metadata: ["agent": "\(id)", "status": "\(status)"]) }
        if report { notices.yield(.exited(agentID: id, status: status)) }
        perform(.spawnForPool(count: refill))
    }

    private func pingLoop() async {
        while !Task.isCancelled && !machine.isStopping {
            try? await Task.sleep(for: settings.pingInterval)
            for id in machine.handshaken {
                if Task.isCancelled || machine.isStopping { return }
                let subject = AgentBusSubject.toAgent(id, AgentVerb.ping)
                do {
                    _ = try await connection.request(ByteBuffer(), to: subject,
                                                     timeout: settings.pingTimeout)
                } catch {
                    // Cancelled (the node shuts down): not a dead agent. shutdown() stops the
                    // agents gracefully; killing one here would cut its workload's grace period.
                    if error is CancellationError || Task.isCancelled || machine.isStopping { return }
                    guard let agent = agents[id], agent.process.isRunning else { continue }
                    let action = machine.pingFailed(id)
                    if case .kill = action {
                        logger.warning("agent does not answer pings; killing it", metadata: ["agent": "\(id)", "error": "\(error)"])
                    }
                    perform(action)
                }
            }
        }
    }

    /// Gives an ended agent's uid back and removes its cgroup (its sandbox's pid 1 is gone,
    /// so the kernel ends the rest).
    private func release(_ agent: AgentProcess) {
        agent.socketChannel?.close()
        agent.cgroup?.remove()
        if let identity = agent.sandboxIdentity { settings.sandbox?.identities.release(identity) }
    }

    /// Stops an agent (its workload is already stopped or gone) and forgets it.
    func retire(_ id: String) async {
        guard let agent = agents[id] else { return }
        _ = machine.retireRequested(id)
        await agent.process.terminate(grace: .seconds(2))
        await ended(id, status: agent.process.exitStatus ?? 0)
    }

    /// Stops every agent: SIGTERM (they stop their workloads gracefully), then SIGKILL after `grace`.
    public func shutdown(grace: Duration) async {
        guard case .terminateAll = machine.nodeStopping() else { return }
        spawnRequestsSink.finish()
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
            release(agent)
        }
        agents.removeAll()
        notices.finish()
    }
}


/// Why the supervisor could not provide an agent.
public enum AgentSupervisorError: Error, Sendable, Equatable, CustomStringConvertible {
    case handshakeTimeout(id: String, after: Duration)
    case agentExited(id: String)
    case stopping
    case noSandboxIdentity(range: String)
    case busSocket(reason: String)
    case networkNeedsSandbox

    public var description: String {
        switch self {
        case .noSandboxIdentity(let range): "every uid of the node's sandbox range \(range) is in use"
        case .busSocket(let reason): "cannot make an agent's bus socket pair: \(reason)"
        case .networkNeedsSandbox: "network none needs a sandboxed node (this one runs with no_sandbox)"
        case .handshakeTimeout(let id, let after): "agent \(id) did not complete its handshake within \(after)"
        case .agentExited(let id): "agent \(id) exited before it could take the workload"
        case .stopping: "the node is stopping"
        }
    }
}
