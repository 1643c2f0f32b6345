import NIOCore

/// An operation sent by a NATS server to a client.
package enum ServerOp: Sendable, Equatable {
    /// `INFO {json}`: the server's identity, limits and options.
    case info(ServerInfo)
    /// A message (`MSG`, or `HMSG` with headers).
    case msg(NATSMessage)
    /// An `HMSG` whose frame was intact but whose header block did not parse. The frame is
    /// consumed, so the stream stays usable; the error says what was wrong.
    case malformedMessage(sid: Int, subject: String, error: NATSProtocolError)
    /// `PING`: the client must answer `PONG`.
    case ping
    /// `PONG`: the answer to a client's `PING`.
    case pong
    /// `+OK`: the acknowledgement of a verbose connection.
    case ok
    /// `-ERR '<message>'`, with the quotes removed.
    case err(String)
}
