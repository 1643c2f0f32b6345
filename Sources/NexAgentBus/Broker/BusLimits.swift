import NIOCore

/// Limits the bus enforces on each connection and each user.
///
/// Memory the bus spends on one client is bounded on both sides. Input: before `CONNECT`
/// only a control line is buffered (``maxControlLine``), afterwards one frame at most
/// (``maxPayload``). Output: every write to a client (`MSG`, `PONG`, `-ERR`, `+OK`, `INFO`)
/// counts toward its queue, and a client whose queue passes ``maxPendingBytesBeforeAuth`` or
/// ``maxPendingBytes`` is closed as a slow consumer, trusted users excepted (their sources are
/// paused instead, see ``AgentBus``).
public struct BusLimits: Sendable, Equatable {
    /// Longest control line, in bytes. Before authentication nothing longer is ever buffered.
    public var maxControlLine = 4096
    /// Largest message (headers and payload), in bytes, once authenticated (0 before).
    public var maxPayload = 1024 * 1024
    /// Bytes queued for an authenticated client before it counts as a slow consumer and is cut
    /// off. For a trusted user this is where the bus stops reading from untrusted publishers.
    public var maxPendingBytes = 8 * 1024 * 1024
    /// Bytes queued for a client that has not authenticated yet (it is only ever sent `INFO`
    /// and one `-ERR`): a client that sends without reading is closed past it.
    public var maxPendingBytesBeforeAuth = 16 * 1024
    /// Bytes (headers and payload) one untrusted user may publish per second, over all its
    /// connections. Past it the bus stops reading from the user's sockets until the budget
    /// refills: the publisher is slowed down, nothing is dropped.
    public var publishBytesPerSecond = 8 * 1024 * 1024
    /// Messages one untrusted user may publish per second, over all its connections.
    public var publishMessagesPerSecond = 20_000
    /// How much of its per-second budget a user may spend at once after being idle (a burst),
    /// as a fraction of a second's worth. A single message larger than the byte budget is still
    /// accepted; the user then waits until the debt is repaid.
    public var publishBurstSeconds = 1.0
    /// Connections at once; more are refused.
    public var maxConnections = 4096
    /// Connections that have not authenticated yet, at once. When a new one would pass it, the
    /// oldest waiting connection is closed: an agent authenticates within a millisecond of
    /// connecting, so a local user holding connections open cannot keep agents out, nor use up
    /// the node's file descriptors.
    public var maxUnauthenticatedConnections = 64
    /// Connections one user (an agent) may hold at once; trusted users are not limited.
    /// An agent needs one: a leaked seed must not let one agent crowd out the others.
    public var maxConnectionsPerUser = 4
    /// Subscriptions one connection may hold.
    public var maxSubscriptionsPerConnection = 1024
    /// Time a new connection has to send a valid CONNECT.
    public var authTimeout: Duration = .seconds(2)

    public init() {}
}
