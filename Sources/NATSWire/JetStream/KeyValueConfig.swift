/// The settings of a key-value bucket (stream `KV_<bucket>` on subjects `$KV.<bucket>.>`).
public struct KeyValueConfig: Sendable, Equatable {
    /// The bucket name: letters, digits, `-` and `_`.
    public var bucket: String
    /// A description stored with the stream.
    public var description: String?
    /// Values kept per key, 1 to 64.
    public var history: Int = 1
    /// How long values live; nil for ever.
    public var ttl: Duration?
    /// The most bytes the bucket holds; -1 for no limit. When full, puts are refused.
    public var maxBytes: Int64 = -1
    /// The largest value accepted; -1 for no limit beyond the server's max payload.
    public var maxValueSize: Int32 = -1
    /// File or memory storage.
    public var storage: StreamConfig.Storage = .file
    /// Copies kept in a cluster (1 on a single server).
    public var replicas: Int = 1

    /// A configuration; only the bucket name is required.
    public init(
        bucket: String, description: String? = nil, history: Int = 1, ttl: Duration? = nil, maxBytes: Int64 = -1,
        maxValueSize: Int32 = -1, storage: StreamConfig.Storage = .file, replicas: Int = 1
    ) {
        self.bucket = bucket
        self.description = description
        self.history = history
        self.ttl = ttl
        self.maxBytes = maxBytes
        self.maxValueSize = maxValueSize
        self.storage = storage
        self.replicas = replicas
    }

    /// The stream that holds the bucket (what nats.go and nats-py create).
    func streamConfig() throws(KeyValueError) -> StreamConfig {
        try KeyValue.validateBucket(bucket)
        guard (1...64).contains(history) else {
            throw .invalidConfiguration(bucket: bucket, reason: "history must be 1 to 64, not \(history)")
        }
        guard replicas >= 1 else { throw .invalidConfiguration(bucket: bucket, reason: "replicas must be at least 1") }
        if let ttl, ttl < .zero { throw .invalidConfiguration(bucket: bucket, reason: "the TTL must not be negative") }
        var config = StreamConfig(name: KeyValue.streamName(bucket), subjects: ["$KV.\(bucket).>"])
        config.description = description
        config.maxMessagesPerSubject = Int64(history)
        config.maxBytes = maxBytes
        config.maxMessageSize = maxValueSize
        config.storage = storage
        config.replicas = replicas
        config.maxAge = ttl ?? .zero
        config.duplicateWindow = ttl.map { $0 > .zero ? Swift.min($0, .seconds(120)) : .seconds(120) } ?? .seconds(120)
        config.allowRollupHeaders = true
        config.denyDelete = true
        config.allowDirect = true
        config.discard = .new
        config.maxMessages = -1
        config.maxConsumers = -1
        return config
    }
}
