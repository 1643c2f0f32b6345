import NIOCore

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
