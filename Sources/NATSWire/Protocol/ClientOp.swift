import NIOCore

/// An operation sent by a NATS client to a server (decoded by the agent-bus broker).
public enum ClientOp: Sendable, Equatable {
    case connect(ConnectInfo)
    /// `PUB`, or `HPUB` when `headers` is not nil.
    case pub(subject: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer)
    case sub(subject: String, queue: String?, sid: String)
    case unsub(sid: String, max: Int?)
    case ping
    case pong
}
