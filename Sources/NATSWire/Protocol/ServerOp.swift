import NIOCore

/// An operation sent by a NATS server to a client.
public enum ServerOp: Sendable, Equatable {
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

/// A message delivered by the server.
public struct NATSMessage: Sendable, Equatable {
    /// The subject it was published to.
    public var subject: String
    /// The subscription id it was delivered to.
    public var sid: Int
    /// Where the publisher expects a reply, if anywhere.
    public var replyTo: String?
    /// Headers, when the message was sent with `HPUB`.
    public var headers: NATSHeaders?
    /// The payload, a slice of the bytes read from the socket (no copy).
    public var payload: ByteBuffer

    /// The status code of the header line (503 no responders, 404, 408...), if any.
    public var status: Int? { headers?.status }

    /// The payload as UTF-8 text (invalid sequences replaced).
    public var string: String { String(buffer: payload) }

    /// A message as delivered on subscription `sid`.
    public init(subject: String, sid: Int, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer) {
        self.subject = subject
        self.sid = sid
        self.replyTo = replyTo
        self.headers = headers
        self.payload = payload
    }
}
