/// Subjects of the node<->agent bus (Nex 0.2 names). Agent `<id>` may only reach its own.
public enum AgentBusSubject {
    /// Node to agent: `agentint.<id>.<verb>` (handshake, deploy, undeploy, ping, trigger).
    public static func toAgent(_ agentID: String, _ verb: String) -> String {
        "agentint.\(agentID).\(verb)"
    }

    /// Agent to node: `hostint.<id>.<verb>` (logs, events, host-service RPC).
    public static func toHost(_ agentID: String, _ verb: String) -> String {
        "hostint.\(agentID).\(verb)"
    }

    /// The subscription an agent is allowed to hold: `agentint.<id>.>`.
    public static func agentSubscription(_ agentID: String) -> String {
        "agentint.\(agentID).>"
    }

    /// The publish space an agent is allowed to use: `hostint.<id>.>`.
    public static func agentPublishSpace(_ agentID: String) -> String {
        "hostint.\(agentID).>"
    }
}
