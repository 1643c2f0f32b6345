/// The acknowledgement of a message stored by JetStream.
public struct PubAck: Decodable, Sendable, Equatable {
    /// The stream that stored the message.
    public var stream: String
    /// Its sequence in that stream (a key-value revision).
    public var sequence: UInt64
    /// True when the message was a duplicate of an earlier `Nats-Msg-Id` and was not stored again.
    public var duplicate: Bool
    /// The JetStream domain of the stream, if any.
    public var domain: String?

    enum CodingKeys: String, CodingKey { case stream, sequence = "seq", duplicate, domain }

    /// Decodes a publish acknowledgement (`stream`, `seq`, `duplicate`, `domain`).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stream = try c.decode(String.self, forKey: .stream)
        sequence = try c.decode(UInt64.self, forKey: .sequence)
        duplicate = try c.decodeIfPresent(Bool.self, forKey: .duplicate) ?? false
        domain = try c.decodeIfPresent(String.self, forKey: .domain)
    }
}
