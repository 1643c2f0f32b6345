import NIOCore

/// What an agent does with the node's requests; ``AgentBusConnection/serve(_:)`` calls it
/// and sends the answers back. Requests may arrive concurrently (a ping during an undeploy).
public protocol AgentRequestHandler: Sendable {
    /// `agentint.<id>.deploy`: always answered, `accepted` only once the workload runs.
    func deploy(_ request: AgentDeployRequest) async -> AgentDeployResponse
    /// `agentint.<id>.undeploy`: answered once the workload has stopped.
    func undeploy() async -> AgentUndeployResponse
    /// `agentint.<id>.ping`.
    func ping() async -> AgentPingResponse
    /// `agentint.<id>.trigger`: one invocation of the agent's function; `traceParent` is the
    /// request's `traceparent` header, carried on to the invocation's host-service calls.
    func trigger(subject: String, payload: ByteBuffer, traceParent: String?) async -> AgentTriggerResult
    /// `agentint.<id>.triggers`: serve the function's triggers on a connection of the agent's
    /// own (its socket already sent on the socket channel).
    func serveTriggers(_ setup: AgentTriggerSetup) async -> AgentTriggerSetupResponse
}
