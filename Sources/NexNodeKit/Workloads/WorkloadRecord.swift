import NexWorkloads
import FoundationEssentials
import NATSWire
import NexControl

/// What the node knows about one deployed workload.
struct WorkloadRecord: Sendable {
    enum State: String, Sendable {
        case starting, running, restarting, stopping
    }

    let id: String
    let namespace: String
    let name: String
    let type: WorkloadType
    let hash: String
    let size: Int
    let description: String?
    let essential: Bool
    /// The deploy claims: stop tokens are checked against them.
    let claims: WorkloadClaims
    /// What the agent is given (re-sent on a restart).
    var agentRequest: AgentDeployRequestTemplate
    var agentID: String?
    var state: State
    var startedAt: Date
    var restarts = 0
    /// Consecutive failed runs, for the restart backoff; reset after a minute of health.
    var failures = 0
    var limitsApplied: [String] = []
    /// Functions: the trigger subjects and the node's subscriptions for them.
    var triggerSubjects: [String] = []
    var trigger: FunctionTrigger?
    /// The deploy's own `host_services` connection, if it brought one (closed when it ends).
    var hostServicesConnection: NATSClient?
}

/// The parts of an agent deploy request that stay the same across restarts.
struct AgentDeployRequestTemplate: Sendable {
    var argv: [String]
    var environment: [String: String]
    var limits: ResourceLimits
    var stopGraceMilliseconds: Int
    var artifactPath: String
}
