/// The JetStream usage and limits of the connected account (`$JS.API.INFO`).
public struct AccountInfo: Decodable, Sendable, Equatable {
    /// Account limits; -1 means unlimited.
    public struct Limits: Decodable, Sendable, Equatable {
        /// Bytes of memory storage allowed.
        public var maxMemory: Int64
        /// Bytes of file storage allowed.
        public var maxStorage: Int64
        /// Streams allowed.
        public var maxStreams: Int
        /// Consumers allowed.
        public var maxConsumers: Int

        enum CodingKeys: String, CodingKey {
            case maxMemory = "max_memory", maxStorage = "max_storage", maxStreams = "max_streams"
            case maxConsumers = "max_consumers"
        }

        /// Decodes the account's limits; an absent limit is -1 (unlimited).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            maxMemory = try c.decodeIfPresent(Int64.self, forKey: .maxMemory) ?? -1
            maxStorage = try c.decodeIfPresent(Int64.self, forKey: .maxStorage) ?? -1
            maxStreams = try c.decodeIfPresent(Int.self, forKey: .maxStreams) ?? -1
            maxConsumers = try c.decodeIfPresent(Int.self, forKey: .maxConsumers) ?? -1
        }
    }

    /// Bytes of memory storage in use.
    public var memory: UInt64
    /// Bytes of file storage in use.
    public var storage: UInt64
    /// Streams of the account.
    public var streams: Int
    /// Consumers of the account.
    public var consumers: Int
    /// The JetStream domain of the server that answered, if it has one.
    public var domain: String?
    /// The account's limits, when the server reports them.
    public var limits: Limits?
    /// API calls made by the account, and how many failed.
    public var apiTotal: UInt64
    /// API calls that failed.
    public var apiErrors: UInt64

    enum CodingKeys: String, CodingKey { case memory, storage, streams, consumers, domain, limits, api }
    enum APIKeys: String, CodingKey { case total, errors }

    /// Decodes `$JS.API.INFO`'s reply; absent counters are 0.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        memory = try c.decodeIfPresent(UInt64.self, forKey: .memory) ?? 0
        storage = try c.decodeIfPresent(UInt64.self, forKey: .storage) ?? 0
        streams = try c.decodeIfPresent(Int.self, forKey: .streams) ?? 0
        consumers = try c.decodeIfPresent(Int.self, forKey: .consumers) ?? 0
        domain = try c.decodeIfPresent(String.self, forKey: .domain)
        limits = try c.decodeIfPresent(Limits.self, forKey: .limits)
        if c.contains(.api) {
            let api = try c.nestedContainer(keyedBy: APIKeys.self, forKey: .api)
            apiTotal = try api.decodeIfPresent(UInt64.self, forKey: .total) ?? 0
            apiErrors = try api.decodeIfPresent(UInt64.self, forKey: .errors) ?? 0
        } else {
            apiTotal = 0
            apiErrors = 0
        }
    }
}
