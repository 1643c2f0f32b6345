/// Something that happened to a ``NATSClient``'s connection, delivered by ``NATSClient/events()``.
public enum NATSEvent: Sendable, Equatable {
    /// The first connection is up.
    case connected(server: String)
    /// The connection was lost; the client is reconnecting (unless it is closing).
    case disconnected(error: NATSError?)
    /// A new connection is up; subscriptions were re-sent and buffered publishes flushed.
    case reconnected(server: String)
    /// The client is closed for good.
    case closed(error: NATSError?)
    /// The server entered lame-duck mode and will shut down soon.
    case lameDuck(server: String)
    /// The server told the client about other servers of its cluster.
    case serversDiscovered([String])
    /// A non-fatal error, such as a permission violation or a malformed message.
    case error(NATSError)
    /// A subscription's buffer is full and messages are being dropped.
    case slowConsumer(subject: String, sid: Int, dropped: Int)
}
