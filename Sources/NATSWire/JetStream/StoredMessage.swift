import FoundationEssentials
import NIOCore

/// A message read from a stream by ``JetStreamContext/directGet(stream:_:)`` or
/// ``JetStreamContext/messageGet(stream:_:)``.
public struct StoredMessage: Sendable, Equatable {
    /// Which message of a stream to read.
    public enum Selector: Sendable, Equatable {
        /// The message with this sequence.
        case sequence(UInt64)
        /// The last message on a subject (wildcards allowed).
        case lastBySubject(String)
        /// The first message on a subject at or after a sequence.
        case nextBySubject(String, from: UInt64)
    }

    /// The subject the message was published to.
    public var subject: String
    /// Its sequence in the stream.
    public var sequence: UInt64
    /// Its headers as published (for a direct get, with the server's `Nats-Stream`,
    /// `Nats-Subject`, `Nats-Sequence` and `Nats-Time-Stamp` added).
    public var headers: NATSHeaders?
    /// Its payload.
    public var payload: ByteBuffer
    /// When the stream stored it.
    public var time: Date

    /// A stored message with the given fields.
    package init(subject: String, sequence: UInt64, headers: NATSHeaders?, payload: ByteBuffer, time: Date) {
        self.subject = subject
        self.sequence = sequence
        self.headers = headers
        self.payload = payload
        self.time = time
    }
}
