import NexWorkloads

/// The lifecycle of every workload on a node, and the node's deploy limits, as a value.
///
/// The ``WorkloadManager`` actor feeds it events (a deploy was asked for, an artifact was
/// fetched, an agent was assigned, the agent answered, the workload exited, a stop was asked
/// for, a restart timer fired, the node is stopping) and carries out the ``Action`` each
/// returns. Nothing here awaits: every decision is taken in one step on the current state, so
/// a result that arrives after an await is judged by the state it finds, never re-checked by
/// hand. The limits follow "reserve, await, commit or roll back": a deploy takes its slot of
/// `max_workloads` and `max_concurrent_deploys` (and later its artifact bytes) before its first
/// await, and gives them back if it fails.
///
/// Per workload:
///
/// ```
///  reservation ──commit──▶ deploying ──accepted──▶ running ──exited (essential, code≠0)──▶ restarting
///                             │  ▲                    │                                    │  backoff
///                             │  └─────────────────────┼──────────── accepted ◀─ timer ─────┘
///                  stop ──▶ stopping ──done──▶ stopped   exited ──▶ stopped        refused/lost ──▶ failed
/// ```
struct WorkloadStateMachine: Sendable {
    /// The node limits the machine enforces (`node_limits`; 0 means no limit where the key allows it).
    struct Limits: Sendable, Equatable {
        var maxWorkloads: Int
        var maxConcurrentDeploys: Int
        var maxTotalBytes: Int
    }

    /// A deploy's hold on the limits before its workload exists (artifact fetch under way).
    struct ReservationID: Hashable, Sendable, CustomStringConvertible {
        let value: Int
        var description: String { "reservation \(value)" }
    }

    /// What a workload is doing.
    enum State: Equatable, Sendable {
        /// Deployed on request: waiting for an agent (`agent` nil), or for the agent's answer
        /// (and then, for a function, for its trigger subscriptions).
        case deploying(agent: String?)
        case running(agent: String)
        /// An essential service that ended: waiting `backoff` (`agent` nil), or being started
        /// again in a new agent.
        case restarting(agent: String?, phase: RestartPhase)
        /// Being stopped (its agent, if it had one, is asked to undeploy and is retired).
        case stopping(agent: String?)
        /// Stopped on request, or ended on its own; forgotten once cleaned up.
        case stopped
        /// Its deploy failed after it was recorded (the agent was lost or refused it).
        case failed(reason: String)
    }

    enum RestartPhase: Equatable, Sendable {
        case backoff(Duration)
        case assigning
        case deploying
    }

    /// What the manager does next.
    enum Action: Equatable, Sendable {
        case none
        /// Reply to the requester with this error; nothing is held for it.
        case refuse(String)
        /// The deploy is reserved: fetch its artifact.
        case fetchArtifact(ReservationID)
        /// The artifact's bytes are reserved: record the workload (connect, make its record),
        /// then commit the reservation.
        case createWorkload(ReservationID)
        /// Take an agent for the workload.
        case assignAgent(workload: String)
        /// Send the agent the deploy request.
        case sendDeploy(workload: String, agent: String)
        /// The agent runs the function: subscribe its trigger subjects.
        case startTrigger(workload: String, agent: String)
        /// The deploy is done: reply to the requester that it runs.
        case replyStarted(workload: String, agent: String)
        /// An essential service runs again.
        case restarted(workload: String, agent: String)
        /// The deploy (or restart) cannot go on: reply with `reason` (a deploy's requester),
        /// retire `releaseAgent`, and when `cleanUp`, close what the workload held and forget it.
        case abandon(workload: String, reason: String, releaseAgent: String?, cleanUp: Bool)
        /// Stop it: stop its trigger, undeploy and retire `undeploy` (if any), clean up, then
        /// ``WorkloadStateMachine/stopFinished(_:)``.
        case stop(workload: String, undeploy: String?)
        /// It ended on its own: retire `releaseAgent`, publish `workload_undeployed` when
        /// `publishUndeployed`, clean up and forget it.
        case end(workload: String, releaseAgent: String?, reason: String, publishUndeployed: Int32?)
        /// It ended and is restarted: retire `releaseAgent`, publish `workload_undeployed` when
        /// `publishUndeployed` and `workload_restarted`, and feed
        /// ``WorkloadStateMachine/restartTimerFired(_:lameDuck:)`` after `delay`.
        case scheduleRestart(workload: String, releaseAgent: String?, delay: Duration, restarts: Int, reason: String,
                             publishUndeployed: Int32?)
    }

    /// What the machine keeps about one workload.
    struct Workload: Sendable, Equatable {
        var state: State
        let essential: Bool
        let isFunction: Bool
        let size: Int
        /// The deploy token (held while ``isDeploying``).
        var token: String?
        /// Its first deploy is under way: from the commit to the reply (`max_concurrent_deploys`).
        var isDeploying = false
        var restarts = 0
        /// Consecutive failed runs (for ``RestartBackoff``); 1 after a healthy run.
        var failures = 0

        var isLive: Bool {
            switch state {
            case .stopped, .failed: false
            default: true
            }
        }

        var agent: String? {
            switch state {
            case .deploying(let agent), .restarting(let agent, _), .stopping(let agent): agent
            case .running(let agent): agent
            case .stopped, .failed: nil
            }
        }
    }

    private struct Reservation: Sendable {
        var token: String?
        var bytes = 0
    }

    let limits: Limits
    private(set) var workloads: [String: Workload] = [:]
    private var reservations: [ReservationID: Reservation] = [:]
    private var nextReservation = 0
    private(set) var isNodeStopping = false

    init(limits: Limits) {
        self.limits = limits
    }

    // MARK: Queries

    func state(of id: String) -> State? { workloads[id]?.state }

    func workload(_ id: String) -> Workload? { workloads[id] }

    /// Workloads deployed and not yet stopped (deploying, running, restarting, stopping).
    var liveCount: Int { workloads.values.filter(\.isLive).count }

    /// Deploys from their reservation to their answer (`max_concurrent_deploys`).
    var deploysUnderWay: Int {
        reservations.count + workloads.values.filter { $0.isDeploying && $0.isLive }.count
    }

    var reservationCount: Int { reservations.count }

    /// The workload whose current agent is `agent`.
    func workload(runningOn agent: String) -> String? {
        workloads.first { $0.value.isLive && $0.value.agent == agent }?.key
    }

    private var bytesHeld: Int {
        workloads.values.filter(\.isLive).reduce(0) { $0 + $1.size } + reservations.values.reduce(0) { $0 + $1.bytes }
    }

    // MARK: Deploy

    /// A deploy was asked for: reserve a workload slot and a deploy slot, or refuse. The
    /// request is checked after this (without an await) and its token claimed with
    /// ``claimToken(_:for:)``; a failed check gives the slots back (``reservationAbandoned(_:)``).
    mutating func deployRequested(nodeID: String, lameDuck: Bool) -> Action {
        if isNodeStopping { return .refuse("node \(nodeID) is stopping") }
        if lameDuck { return .refuse("node \(nodeID) is in lame duck mode and accepts no new workloads") }
        if deploysUnderWay >= limits.maxConcurrentDeploys {
            return .refuse("node \(nodeID) is busy with \(deploysUnderWay) deploys (node_limits.max_concurrent_deploys); try again")
        }
        let held = liveCount + reservations.count
        if limits.maxWorkloads > 0, held >= limits.maxWorkloads {
            return .refuse("node \(nodeID) runs or is starting \(held) workloads; node_limits.max_workloads is \(limits.maxWorkloads)")
        }
        nextReservation += 1
        let id = ReservationID(value: nextReservation)
        reservations[id] = Reservation()
        return .fetchArtifact(id)
    }

    /// The reservation's deploy token (issuer and `jti`); false when another deploy under way
    /// holds it (each token starts one workload).
    mutating func claimToken(_ token: String, for reservation: ReservationID) -> Bool {
        guard reservations[reservation] != nil, !isTokenUnderWay(token) else { return false }
        reservations[reservation]?.token = token
        return true
    }

    /// Whether a deploy token is held by a deploy under way.
    func isTokenUnderWay(_ token: String) -> Bool {
        reservations.values.contains { $0.token == token } || workloads.values.contains { $0.isDeploying && $0.isLive && $0.token == token }
    }

    /// The artifact is here: reserve its bytes (`max_total_bytes`), or refuse and roll back.
    mutating func artifactFetched(_ reservation: ReservationID, bytes: Int, workloadName: String) -> Action {
        guard reservations[reservation] != nil else { return .refuse("workload \(workloadName) was abandoned") }
        if isNodeStopping {
            reservations[reservation] = nil
            return .refuse("the node is stopping")
        }
        if limits.maxTotalBytes > 0, bytesHeld + bytes > limits.maxTotalBytes {
            reservations[reservation] = nil
            return .refuse("workload \(workloadName) would bring this node over node_limits.max_total_bytes (\(limits.maxTotalBytes))")
        }
        reservations[reservation]?.bytes = bytes
        return .createWorkload(reservation)
    }

    /// The deploy failed before its workload was recorded: give its slots back.
    mutating func reservationAbandoned(_ reservation: ReservationID) {
        reservations[reservation] = nil
    }

    /// The workload is recorded as `id`: the reservation becomes the workload.
    mutating func reservationCommitted(_ reservation: ReservationID, workload id: String, essential: Bool,
                                       isFunction: Bool) -> Action {
        guard let held = reservations.removeValue(forKey: reservation) else {
            return .abandon(workload: id, reason: "the deploy was abandoned", releaseAgent: nil, cleanUp: true)
        }
        if isNodeStopping {
            return .abandon(workload: id, reason: "the node is stopping", releaseAgent: nil, cleanUp: true)
        }
        workloads[id] = Workload(state: .deploying(agent: nil), essential: essential, isFunction: isFunction,
                                 size: held.bytes, token: held.token, isDeploying: true)
        return .assignAgent(workload: id)
    }

    /// An agent was taken for the workload (first deploy or restart).
    mutating func agentAssigned(_ id: String, agent: String) -> Action {
        guard var workload = workloads[id] else {
            return .abandon(workload: id, reason: "workload \(id) was stopped while it started", releaseAgent: agent, cleanUp: false)
        }
        switch workload.state {
        case .deploying(nil):
            workload.state = .deploying(agent: agent)
        case .restarting(nil, .assigning):
            workload.state = .restarting(agent: agent, phase: .deploying)
        case .stopping, .stopped:
            return .abandon(workload: id, reason: "workload \(id) was stopped while it started", releaseAgent: agent, cleanUp: false)
        case .failed(let reason):
            workloads[id] = nil
            return .abandon(workload: id, reason: reason, releaseAgent: agent, cleanUp: true)
        case .deploying, .running, .restarting:
            // Not waiting for an agent: this one is not wanted.
            return .abandon(workload: id, reason: "workload \(id) did not ask for an agent", releaseAgent: agent, cleanUp: false)
        }
        workloads[id] = workload
        return .sendDeploy(workload: id, agent: agent)
    }

    /// No agent could be had for the workload.
    mutating func agentUnavailable(_ id: String, reason: String) -> Action {
        guard var workload = workloads[id] else { return .none }
        switch workload.state {
        case .deploying(nil):
            workloads[id] = nil
            return .abandon(workload: id, reason: reason, releaseAgent: nil, cleanUp: true)
        case .restarting(nil, .assigning):
            return backOff(id, &workload, releaseAgent: nil, reason: reason, publishUndeployed: nil)
        case .failed:
            workloads[id] = nil
            return .abandon(workload: id, reason: reason, releaseAgent: nil, cleanUp: true)
        default:
            return .abandon(workload: id, reason: "workload \(id) was stopped while it started", releaseAgent: nil, cleanUp: false)
        }
    }

    /// The agent started the workload.
    mutating func agentAccepted(_ id: String, agent: String) -> Action {
        guard var workload = workloads[id] else {
            return .abandon(workload: id, reason: "workload \(id) was stopped while it started", releaseAgent: agent, cleanUp: false)
        }
        switch workload.state {
        case .deploying(let current?) where current == agent:
            if workload.isFunction { return .startTrigger(workload: id, agent: agent) }
            workload.state = .running(agent: agent)
            workload.isDeploying = false
            workloads[id] = workload
            return .replyStarted(workload: id, agent: agent)
        case .restarting(let current?, .deploying) where current == agent:
            workload.state = .running(agent: agent)
            workloads[id] = workload
            return .restarted(workload: id, agent: agent)
        case .stopping(let current?) where current == agent:
            // The stop undeploys this agent and retires it.
            return .abandon(workload: id, reason: "workload \(id) was stopped while it started", releaseAgent: nil, cleanUp: false)
        case .failed(let reason):
            workloads[id] = nil
            return .abandon(workload: id, reason: reason, releaseAgent: agent, cleanUp: true)
        default:
            return .abandon(workload: id, reason: "workload \(id) ended while it started", releaseAgent: agent, cleanUp: false)
        }
    }

    /// The agent refused the workload, or did not answer the deploy request.
    mutating func agentRefused(_ id: String, agent: String, reason: String) -> Action {
        guard var workload = workloads[id] else {
            return .abandon(workload: id, reason: reason, releaseAgent: agent, cleanUp: false)
        }
        switch workload.state {
        case .deploying(let current?) where current == agent:
            workloads[id] = nil
            return .abandon(workload: id, reason: reason, releaseAgent: agent, cleanUp: true)
        case .restarting(let current?, .deploying) where current == agent:
            return backOff(id, &workload, releaseAgent: agent, reason: reason, publishUndeployed: nil)
        case .failed:
            workloads[id] = nil
            return .abandon(workload: id, reason: reason, releaseAgent: agent, cleanUp: true)
        case .stopping(let current?) where current == agent:
            return .abandon(workload: id, reason: "workload \(id) was stopped while it started", releaseAgent: nil, cleanUp: false)
        default:
            return .abandon(workload: id, reason: reason, releaseAgent: agent, cleanUp: false)
        }
    }

    /// A function's trigger subjects are subscribed: the deploy is done. When it is abandoned
    /// instead, the caller stops the trigger it started.
    mutating func triggerStarted(_ id: String, agent: String) -> Action {
        guard var workload = workloads[id] else {
            return .abandon(workload: id, reason: "workload \(id) was stopped while it started", releaseAgent: agent, cleanUp: false)
        }
        switch workload.state {
        case .deploying(let current?) where current == agent:
            workload.state = .running(agent: agent)
            workload.isDeploying = false
            workloads[id] = workload
            return .replyStarted(workload: id, agent: agent)
        case .failed(let reason):
            workloads[id] = nil
            return .abandon(workload: id, reason: reason, releaseAgent: agent, cleanUp: true)
        case .stopping(let current?) where current == agent:
            return .abandon(workload: id, reason: "workload \(id) was stopped while it started", releaseAgent: nil, cleanUp: false)
        default:
            return .abandon(workload: id, reason: "workload \(id) ended while it started", releaseAgent: agent, cleanUp: false)
        }
    }

    /// A function's trigger subjects could not be subscribed.
    mutating func triggerFailed(_ id: String, agent: String, reason: String) -> Action {
        agentRefused(id, agent: agent, reason: reason)
    }

    // MARK: Stop

    /// A stop was asked for (the requester's token was checked).
    mutating func stopRequested(_ id: String) -> Action {
        guard var workload = workloads[id], workload.isLive else { return .refuse("no such workload: \(id)") }
        if case .stopping = workload.state { return .refuse("workload \(id) is already stopping") }
        let agent = workload.agent
        workload.state = .stopping(agent: agent)
        workloads[id] = workload
        return .stop(workload: id, undeploy: agent)
    }

    /// The stop is carried out: the workload is gone.
    mutating func stopFinished(_ id: String) {
        workloads[id] = nil
    }

    /// The node stops: every live workload is stopped, new deploys and reservations refused.
    mutating func nodeStopping() -> [Action] {
        isNodeStopping = true
        var actions: [Action] = []
        for id in workloads.keys.sorted() {
            guard var workload = workloads[id], workload.isLive else { continue }
            if case .stopping = workload.state { continue }
            let agent = workload.agent
            workload.state = .stopping(agent: agent)
            workloads[id] = workload
            actions.append(.stop(workload: id, undeploy: agent))
        }
        return actions
    }

    // MARK: Exits and restarts

    /// The workload's process ended on its own (its agent reported `workload_undeployed`).
    mutating func workloadExited(agent: String, code: Int32, reason: String, ranFor: Duration, lameDuck: Bool) -> Action {
        ended(agent: agent, code: code, reason: reason, ranFor: ranFor, lameDuck: lameDuck, publish: false)
    }

    /// The workload's agent exited or was killed (the supervisor noticed).
    mutating func agentLost(_ agent: String, code: Int32, reason: String, ranFor: Duration, lameDuck: Bool) -> Action {
        ended(agent: agent, code: code, reason: reason, ranFor: ranFor, lameDuck: lameDuck, publish: true)
    }

    private mutating func ended(agent: String, code: Int32, reason: String, ranFor: Duration, lameDuck: Bool,
                                publish: Bool) -> Action {
        guard let id = workload(runningOn: agent), var workload = workloads[id] else { return .none }
        switch workload.state {
        case .running:
            let restart = workload.essential && code != 0 && !lameDuck && !isNodeStopping
            guard restart else {
                workload.state = .stopped
                workloads[id] = workload
                return .end(workload: id, releaseAgent: agent, reason: reason, publishUndeployed: publish ? code : nil)
            }
            workload.failures = ranFor >= RestartBackoff.healthyRun ? 1 : workload.failures + 1
            return backOff(id, &workload, releaseAgent: agent, reason: reason, publishUndeployed: publish ? code : nil,
                           counted: true)
        case .deploying:
            // The deploy waiting on this agent finds the failure when its answer comes.
            workload.state = .failed(reason: "workload \(id) ended while it started: \(reason)")
            workloads[id] = workload
            return .none
        case .restarting(_, .deploying):
            return backOff(id, &workload, releaseAgent: agent, reason: reason, publishUndeployed: publish ? code : nil)
        case .stopping, .stopped, .failed, .restarting:
            // A stop is under way (it retires the agent), or the end was already counted.
            return .none
        }
    }

    private mutating func backOff(_ id: String, _ workload: inout Workload, releaseAgent: String?, reason: String,
                                  publishUndeployed: Int32?, counted: Bool = false) -> Action {
        if !counted { workload.failures += 1 }
        if isNodeStopping {
            workload.state = .stopped
            workloads[id] = workload
            return .end(workload: id, releaseAgent: releaseAgent, reason: reason, publishUndeployed: publishUndeployed)
        }
        workload.restarts += 1
        let delay = RestartBackoff.delay(afterFailures: workload.failures)
        workload.state = .restarting(agent: nil, phase: .backoff(delay))
        workloads[id] = workload
        return .scheduleRestart(workload: id, releaseAgent: releaseAgent, delay: delay, restarts: workload.restarts,
                                reason: reason, publishUndeployed: publishUndeployed)
    }

    /// A restart's backoff is over.
    mutating func restartTimerFired(_ id: String, lameDuck: Bool) -> Action {
        guard var workload = workloads[id], case .restarting(nil, .backoff) = workload.state else { return .none }
        if lameDuck || isNodeStopping {
            workload.state = .stopped
            workloads[id] = workload
            return .end(workload: id, releaseAgent: nil, reason: lameDuck ? "the node is in lame duck mode" : "the node is stopping",
                        publishUndeployed: nil)
        }
        workload.state = .restarting(agent: nil, phase: .assigning)
        workloads[id] = workload
        return .assignAgent(workload: id)
    }

    /// The workload ended and what it held is closed: forget it.
    mutating func cleanedUp(_ id: String) {
        if let workload = workloads[id], !workload.isLive { workloads[id] = nil }
    }
}
