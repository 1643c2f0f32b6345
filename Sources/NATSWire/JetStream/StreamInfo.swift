import FoundationEssentials

/// A stream's configuration and state, as `STREAM.INFO` and `STREAM.CREATE` return them.
public struct StreamInfo: Decodable, Sendable, Equatable {
    /// The counters of a stream.
    public struct State: Decodable, Sendable, Equatable {
        /// Messages stored.
        public var messages: UInt64
        /// Bytes stored.
        public var bytes: UInt64
        /// The sequence of the oldest message.
        public var firstSequence: UInt64
        /// The sequence of the newest message.
        public var lastSequence: UInt64
        /// Consumers of the stream.
        public var consumerCount: Int
        /// The number of distinct subjects (reported by nats-server 2.9+).
        public var subjectCount: UInt64

        enum CodingKeys: String, CodingKey {
            case messages, bytes, firstSequence = "first_seq", lastSequence = "last_seq"
            case consumerCount = "consumer_count", subjectCount = "num_subjects"
        }

        /// Decodes the stream's counters; absent ones are 0.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            messages = try c.decodeIfPresent(UInt64.self, forKey: .messages) ?? 0
            bytes = try c.decodeIfPresent(UInt64.self, forKey: .bytes) ?? 0
            firstSequence = try c.decodeIfPresent(UInt64.self, forKey: .firstSequence) ?? 0
            lastSequence = try c.decodeIfPresent(UInt64.self, forKey: .lastSequence) ?? 0
            consumerCount = try c.decodeIfPresent(Int.self, forKey: .consumerCount) ?? 0
            subjectCount = try c.decodeIfPresent(UInt64.self, forKey: .subjectCount) ?? 0
        }
    }

    /// The configuration, with the server's defaults filled in.
    public var config: StreamConfig
    /// The counters.
    public var state: State
    /// When the stream was created.
    public var created: Date?

    enum CodingKeys: String, CodingKey { case config, state, created }

    /// Decodes a stream's info as the server returns it (`created` RFC 3339).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        config = try c.decode(StreamConfig.self, forKey: .config)
        state = try c.decode(State.self, forKey: .state)
        created = try c.decodeIfPresent(String.self, forKey: .created).flatMap(RFC3339.parse)
    }
}
