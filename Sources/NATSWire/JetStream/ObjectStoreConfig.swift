/// The settings of an object store bucket (stream `OBJ_<bucket>` on `$O.<bucket>.C.>` and `$O.<bucket>.M.>`).
public struct ObjectStoreConfig: Sendable, Equatable {
    /// The bucket name: letters, digits, `-` and `_`.
    public var bucket: String
    /// A description stored with the stream.
    public var description: String?
    /// How long objects live; nil for ever.
    public var ttl: Duration?
    /// The most bytes the bucket holds; -1 for no limit. When full, puts are refused.
    public var maxBytes: Int64 = -1
    /// File or memory storage.
    public var storage: StreamConfig.Storage = .file
    /// Copies kept in a cluster (1 on a single server).
    public var replicas: Int = 1

    /// A configuration; only the bucket name is required.
    public init(
        bucket: String, description: String? = nil, ttl: Duration? = nil, maxBytes: Int64 = -1,
        storage: StreamConfig.Storage = .file, replicas: Int = 1
    ) {
        self.bucket = bucket
        self.description = description
        self.ttl = ttl
        self.maxBytes = maxBytes
        self.storage = storage
        self.replicas = replicas
    }

    /// The stream that holds the bucket (what nats.go and nats-py create).
    func streamConfig() throws(ObjectStoreError) -> StreamConfig {
        try ObjectStore.validateBucket(bucket)
        guard replicas >= 1 else { throw .invalidConfiguration(bucket: bucket, reason: "replicas must be at least 1") }
        if let ttl, ttl < .zero { throw .invalidConfiguration(bucket: bucket, reason: "the TTL must not be negative") }
        var config = StreamConfig(name: ObjectStore.streamName(bucket), subjects: ["$O.\(bucket).C.>", "$O.\(bucket).M.>"])
        config.description = description
        config.maxAge = ttl ?? .zero
        config.maxBytes = maxBytes == 0 ? -1 : maxBytes
        config.storage = storage
        config.replicas = replicas
        config.discard = .new
        config.allowRollupHeaders = true
        config.allowDirect = true
        return config
    }
}
