import NIOCore

/// An operation sent by a NATS client to a server (decoded by the agent-bus broker).
package enum ClientOp: Sendable, Equatable {
    /// `CONNECT {json}`: the client's options and credentials.
    case connect(ConnectInfo)
    /// `PUB`, or `HPUB` when `headers` is not nil.
    case pub(subject: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer)
    /// `SUB <subject> [queue] <sid>`: subscribe, in a queue group when `queue` is not nil.
    case sub(subject: String, queue: String?, sid: String)
    /// `UNSUB <sid> [max]`: unsubscribe now, or after `max` messages in all.
    case unsub(sid: String, max: Int?)
    /// `PING`: the server must answer `PONG`.
    case ping
    /// `PONG`: the answer to a server's `PING`.
    case pong
}
