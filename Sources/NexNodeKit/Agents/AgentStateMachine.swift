/// The lifecycle of the node's `nex-agent` processes and of its warm pool, as a value.
///
/// The ``AgentSupervisor`` actor feeds it events (an agent is being started, was started, sent
/// its handshake, missed its handshake deadline, failed a health ping, exited; a deploy wants an
/// agent; one is retired; the node stops) and carries out the ``Action`` each returns (spawn,
/// answer the handshake, hand an agent out, kill, terminate, clean up and report). Time comes in
/// as a value (`now`), so the handshake timeout is an event like the others and needs no timer.
///
/// Per agent:
///
/// ```
/// spawning ──spawned──▶ awaitingHandshake ──handshake──▶ warm ──acquire──▶ assigned
///     │                    │ deadline passed: kill          │ ping failed: kill │ retire
///     ▼                    ▼                                ▼                   ▼
///   (gone)               stopping ◀─────────────────────────┴──── stopping ◀───┘ ──exited──▶ dead (forgotten)
/// ```
struct AgentStateMachine: Sendable {
    /// Who the agent is started for: the warm pool, or a deploy that found the pool empty.
    enum Purpose: Equatable, Sendable {
        case pool
        case dedicated
    }

    enum State: Equatable, Sendable {
        case spawning(Purpose)
        case awaitingHandshake(Purpose, deadline: ContinuousClock.Instant)
        /// Handshaken and unassigned.
        case warm
        /// Handed out to a workload.
        case assigned
        /// Being killed or terminated; its exit is awaited.
        case stopping(wasAssigned: Bool)
    }

    enum Action: Equatable, Sendable {
        case none
        /// Start this many agents for the pool.
        case spawnForPool(count: Int)
        /// Answer the agent's handshake; when `handOut`, give it to the deploy waiting for it.
        case acceptHandshake(agent: String, handOut: Bool)
        /// Give this warm agent to the deploy that asked, and start `refill` agents for the pool.
        case handOut(agent: String, refill: Int)
        /// The pool is empty: start an agent for this deploy.
        case spawnDedicated
        /// Kill the agent's process group (SIGKILL). `unresponsive`: report it as not answering
        /// pings; `failWaiter`: the deploy waiting for its handshake gets this error.
        case kill(agent: String, unresponsive: Bool, failWaiter: AgentSupervisorError?)
        /// Stop the agent gracefully (SIGTERM, then SIGKILL).
        case terminate(agent: String)
        /// The agent is gone: remove its bus user and directory; `report` its exit to the
        /// workload manager (logged as a warning when `warn`); fail a deploy waiting for its
        /// handshake when `failWaiter`; start `refill` agents for the pool.
        case cleanUp(agent: String, report: Bool, warn: Bool, failWaiter: Bool, refill: Int)
        /// Stop every agent (the node stops); fail every deploy waiting for a handshake.
        case terminateAll([String])
    }

    let poolSize: Int
    let handshakeTimeout: Duration
    private(set) var agents: [String: State] = [:]
    /// Warm agents, oldest first (the oldest is handed out first).
    private(set) var warm: [String] = []
    private(set) var isStopping = false

    init(poolSize: Int, handshakeTimeout: Duration) {
        self.poolSize = poolSize
        self.handshakeTimeout = handshakeTimeout
    }

    // MARK: Queries

    func state(of agent: String) -> State? { agents[agent] }

    /// Agents that completed their handshake and are alive: they are pinged.
    var handshaken: [String] {
        agents.filter { $0.value == .warm || $0.value == .assigned }.map(\.key).sorted()
    }

    /// Pool agents started and not yet warm.
    private var poolStarting: Int {
        agents.values.filter { state in
            switch state {
            case .spawning(.pool), .awaitingHandshake(.pool, _): true
            default: false
            }
        }.count
    }

    private var shortfall: Int { isStopping ? 0 : max(0, poolSize - warm.count - poolStarting) }

    // MARK: Pool and spawning

    /// How many agents to start to fill the pool (none while the node stops).
    func fillPool() -> Action {
        shortfall > 0 ? .spawnForPool(count: shortfall) : .none
    }

    /// An agent process is being started (its id is chosen first).
    mutating func spawnStarted(_ agent: String, for purpose: Purpose) -> Bool {
        guard !isStopping else { return false }
        agents[agent] = .spawning(purpose)
        return true
    }

    /// Its process runs: it has until `now + handshakeTimeout` to send its handshake.
    mutating func spawned(_ agent: String, now: ContinuousClock.Instant) -> Action {
        switch agents[agent] {
        case .spawning(let purpose)?:
            agents[agent] = .awaitingHandshake(purpose, deadline: now.advanced(by: handshakeTimeout))
            return .none
        case .warm?, .assigned?, .awaitingHandshake?:
            return .none  // its handshake came first (or this is a repeat)
        case .stopping?, nil:
            // The node began to stop (or retired it) while it was started.
            return .terminate(agent: agent)
        }
    }

    /// Its process could not be started. For the pool, the supervisor reports this a second
    /// after the failure (the slot stays counted meanwhile), so a broken agent binary cannot spin.
    mutating func spawnFailed(_ agent: String) -> Action {
        guard case .spawning(let purpose)? = agents.removeValue(forKey: agent) else { return .none }
        return purpose == .pool ? fillPool() : .none
    }

    /// A deploy wants an agent.
    /// `dedicated`: the deploy needs an agent started for it (one the pool's cannot be, e.g.
    /// without a network), whatever the pool holds.
    mutating func acquire(dedicated: Bool = false) -> Action {
        guard !isStopping else { return .none }
        guard !warm.isEmpty, !dedicated else { return .spawnDedicated }
        let agent = warm.removeFirst()
        agents[agent] = .assigned
        return .handOut(agent: agent, refill: shortfall)
    }

    // MARK: Handshakes and health

    /// The agent sent a well-formed handshake on its own subject.
    mutating func handshakeReceived(_ agent: String) -> Action {
        switch agents[agent] {
        case .awaitingHandshake(.pool, _)?, .spawning(.pool)?:
            agents[agent] = .warm
            warm.append(agent)
            return .acceptHandshake(agent: agent, handOut: false)
        case .awaitingHandshake(.dedicated, _)?, .spawning(.dedicated)?:
            agents[agent] = .assigned
            return .acceptHandshake(agent: agent, handOut: true)
        case .warm?, .assigned?:
            // A repeated handshake: answer it again, nothing changes.
            return .acceptHandshake(agent: agent, handOut: false)
        case .stopping?, nil:
            return .none
        }
    }

    /// Time passed: agents past their handshake deadline are killed.
    mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for (agent, state) in agents.sorted(by: { $0.key < $1.key }) {
            guard case .awaitingHandshake(_, let deadline) = state, deadline <= now else { continue }
            agents[agent] = .stopping(wasAssigned: false)
            actions.append(.kill(agent: agent, unresponsive: false,
                                 failWaiter: .handshakeTimeout(id: agent, after: handshakeTimeout)))
        }
        return actions
    }

    /// The agent did not answer a health ping in time.
    mutating func pingFailed(_ agent: String) -> Action {
        guard !isStopping else { return .none }
        switch agents[agent] {
        case .warm?:
            warm.removeAll { $0 == agent }
            agents[agent] = .stopping(wasAssigned: false)
        case .assigned?:
            agents[agent] = .stopping(wasAssigned: true)
        default:
            return .none
        }
        return .kill(agent: agent, unresponsive: true, failWaiter: nil)
    }

    // MARK: Ends

    /// Its workload is stopped (or gone): stop the agent.
    mutating func retireRequested(_ agent: String) -> Action {
        switch agents[agent] {
        case nil, .stopping?:
            return .none
        case .warm?:
            warm.removeAll { $0 == agent }
            agents[agent] = .stopping(wasAssigned: false)
        case .assigned?:
            agents[agent] = .stopping(wasAssigned: true)
        case .spawning?, .awaitingHandshake?:
            agents[agent] = .stopping(wasAssigned: false)
        }
        return .terminate(agent: agent)
    }

    /// The agent's process ended (`status`: exit code, negative for a signal).
    mutating func exited(_ agent: String, status: Int32) -> Action {
        guard let state = agents.removeValue(forKey: agent) else { return .none }
        warm.removeAll { $0 == agent }
        let wasAssigned: Bool
        var failWaiter = false
        switch state {
        case .assigned: wasAssigned = true
        case .stopping(let assigned): wasAssigned = assigned
        case .awaitingHandshake(.dedicated, _), .spawning(.dedicated):
            wasAssigned = false
            failWaiter = true
        default: wasAssigned = false
        }
        if isStopping {
            return .cleanUp(agent: agent, report: false, warn: false, failWaiter: failWaiter, refill: 0)
        }
        return .cleanUp(agent: agent, report: true, warn: status != 0 || !wasAssigned, failWaiter: failWaiter,
                        refill: shortfall)
    }

    /// The node stops: no more agents; every one is stopped.
    mutating func nodeStopping() -> Action {
        isStopping = true
        warm.removeAll()
        var wasAssigned: [String: Bool] = [:]
        for (agent, state) in agents {
            switch state {
            case .assigned: wasAssigned[agent] = true
            case .stopping(let assigned): wasAssigned[agent] = assigned
            default: wasAssigned[agent] = false
            }
        }
        for (agent, assigned) in wasAssigned { agents[agent] = .stopping(wasAssigned: assigned) }
        return .terminateAll(agents.keys.sorted())
    }
}
