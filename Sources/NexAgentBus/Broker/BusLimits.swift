import NIOCore

/// Limits the bus enforces on each connection.
public struct BusLimits: Sendable, Equatable {
    /// Longest control line, in bytes.
    public var maxControlLine = 4096
    /// Largest message (headers and payload), in bytes.
    public var maxPayload = 1024 * 1024
    /// Bytes queued for a client before it counts as a slow consumer and is cut off.
    public var maxPendingBytes = 8 * 1024 * 1024
    /// Connections at once; more are refused.
    public var maxConnections = 4096
    /// Connections one user (an agent) may hold at once; the node's own user is not limited.
    /// An agent needs one: a leaked seed must not let one agent crowd out the others.
    public var maxConnectionsPerUser = 4
    /// Subscriptions one connection may hold.
    public var maxSubscriptionsPerConnection = 1024
    /// Time a new connection has to send a valid CONNECT.
    public var authTimeout: TimeAmount = .seconds(2)

    public init() {}
}
