/// A snapshot of what the bus holds and what it has refused, from ``AgentBus/statistics()``.
public struct BusStatistics: Sendable, Equatable {
    /// Connections open, authenticated or not.
    public var connections = 0
    /// Connections that have authenticated.
    public var authenticatedConnections = 0
    /// Bytes received and not yet decoded (partial frames), over all connections.
    public var bufferedInputBytes = 0
    /// The most ``bufferedInputBytes`` has ever been since the bus started.
    public var peakBufferedInputBytes = 0
    /// Bytes written to clients and not yet taken by their sockets, over all connections.
    public var pendingOutputBytes = 0
    /// Connections closed for sending anything but `CONNECT` before authenticating.
    public var closedBeforeAuthentication = 0
    /// Unauthenticated connections closed to make room for a new one
    /// (``BusLimits/maxUnauthenticatedConnections``).
    public var unauthenticatedEvicted = 0
    /// Connections closed as slow consumers (their output queue passed its limit).
    public var slowConsumersClosed = 0
    /// Times a connection was paused because its user had spent its publish budget.
    public var publishThrottles = 0
    /// Times untrusted publishers were paused because a trusted connection fell behind.
    public var trustedBackpressurePauses = 0
    /// Messages published on the bus since it started, by agents and the node.
    public var messagesPublished = 0
    /// Their payload bytes.
    public var bytesPublished = 0

    public init() {}
}
