import FoundationEssentials
import NIOCore

/// A message delivered by a JetStream consumer, with the metadata of its `$JS.ACK` reply subject.
public struct JetStreamMessage: Sendable, Equatable {
    /// The subject it was published to.
    public var subject: String
    /// Its headers, when it has any.
    public var headers: NATSHeaders?
    /// Its payload (empty for a headers-only consumer).
    public var payload: ByteBuffer
    /// The stream that stored it.
    public var stream: String
    /// The consumer that delivered it.
    public var consumer: String
    /// Its sequence in the stream.
    public var streamSequence: UInt64
    /// Its sequence among the consumer's deliveries.
    public var consumerSequence: UInt64
    /// How many times it was delivered.
    public var deliveries: UInt64
    /// Messages left for the consumer after this one, when it was delivered.
    public var pending: UInt64
    /// When the stream stored it.
    public var timestamp: Date
    /// The JetStream domain, when the server names one.
    public var domain: String?

    /// The payload as UTF-8 text.
    public var string: String { String(buffer: payload) }

    /// Reads the metadata from a message whose reply subject is a `$JS.ACK` subject; nil otherwise.
    ///
    /// Two layouts exist: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>`
    /// and, since nats-server 2.9, `$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>[.<token>]`
    /// (domain `_` for none).
    init?(_ message: NATSMessage) {
        guard let reply = message.replyTo, reply.hasPrefix("$JS.ACK.") else { return nil }
        let tokens = reply.split(separator: ".", omittingEmptySubsequences: false)
        let base: Int
        var domain: String?
        switch tokens.count {
        case 9:
            base = 2
        case 11...:
            base = 4
            domain = tokens[2] == "_" ? nil : String(tokens[2])
        default:
            return nil
        }
        guard let delivered = UInt64(tokens[base + 2]), let streamSequence = UInt64(tokens[base + 3]),
              let consumerSequence = UInt64(tokens[base + 4]), let nanoseconds = Int64(tokens[base + 5]),
              let pending = UInt64(tokens[base + 6])
        else { return nil }
        self.subject = message.subject
        self.headers = message.headers
        self.payload = message.payload
        self.stream = String(tokens[base])
        self.consumer = String(tokens[base + 1])
        self.streamSequence = streamSequence
        self.consumerSequence = consumerSequence
        self.deliveries = delivered
        self.pending = pending
        self.timestamp = Date(timeIntervalSince1970: Double(nanoseconds) / 1e9)
        self.domain = domain
    }
}
