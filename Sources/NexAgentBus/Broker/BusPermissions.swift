/// What one bus user may do. Subscriptions must lie inside an allowed pattern; publishes
/// must match one, or be a reply to a request this user received (when `allowResponses`).
public struct BusPermissions: Sendable, Equatable {
    public var publish: [String]
    public var subscribe: [String]
    /// Lets the user publish once to the reply subject of each message delivered to it.
    public var allowResponses: Bool

    public init(publish: [String], subscribe: [String], allowResponses: Bool) {
        self.publish = publish
        self.subscribe = subscribe
        self.allowResponses = allowResponses
    }

    /// The node's own user: everything.
    public static let everything = BusPermissions(publish: [">"], subscribe: [">"], allowResponses: true)

    /// Agent `<id>`: publish to `hostint.<id>.>` and replies it was given; subscribe to
    /// `agentint.<id>.>` and its own inbox (`_INBOX.<id>.>`).
    public static func agent(_ agentID: String) -> BusPermissions {
        BusPermissions(
            publish: [AgentBusSubject.agentPublishSpace(agentID)],
            subscribe: [AgentBusSubject.agentSubscription(agentID), AgentEnvironment.inboxPrefix(agentID: agentID) + ".>"],
            allowResponses: true)
    }

    func mayPublish(_ subject: String) -> Bool {
        publish.contains { SubjectPattern.matches($0, subject) }
    }

    /// Whether this user may subscribe to `pattern` (for a literal subject: may receive on it).
    func maySubscribe(_ pattern: String) -> Bool {
        subscribe.contains { SubjectPattern.contains($0, pattern) }
    }
}
