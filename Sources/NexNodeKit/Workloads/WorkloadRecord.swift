import NexWorkloads
import FoundationEssentials
import NATSWire
import NexControl

/// What the node knows about one deployed workload: its data and what it holds. Its
/// lifecycle (state, agent, restarts) is in ``WorkloadStateMachine``.
struct WorkloadRecord: Sendable {
    let id: String
    let namespace: String
    let name: String
    let type: WorkloadType
    let hash: String
    /// Deployed with `allow_unverified_hash` and a token whose hash is not a SHA-256 digest:
    /// nothing pinned what runs (``hash`` is what was fetched).
    let unverified: Bool
    let size: Int
    let description: String?
    let essential: Bool
    /// The deploy claims: stop tokens are checked against them.
    let claims: WorkloadClaims
    /// What the agent is given (re-sent on a restart).
    var agentRequest: AgentDeployRequestTemplate
    var startedAt: Date
    var restarts = 0
    /// Another node of the nexus starts it again when this one is lost (`reschedulable`).
    var reschedulable = false
    /// Deployed by the node from its `autostart` config (signed by the node itself).
    var autostarted = false
    var limitsApplied: [String] = []
    /// Functions: the trigger subjects and the node's subscriptions for them.
    var triggerSubjects: [String] = []
    var trigger: FunctionTrigger?
    /// The function's current agent, when it can serve the triggers itself (it returned a
    /// trigger key and has a socket channel).
    var directAgent: DirectTriggerAgent?
    /// The deploy's own `host_services` connection, if it brought one (closed when it ends).
    var hostServicesConnection: NATSClient?
}

/// The parts of an agent deploy request that stay the same across restarts.
struct AgentDeployRequestTemplate: Sendable {
    var argv: [String]
    var environment: [String: String]
    var limits: ResourceLimits
    var network: WorkloadNetwork
    var stopGraceMilliseconds: Int
    var artifactPath: String
}
