import FoundationEssentials

/// The metadata of a stored object, as nats.go and nats-py write it to `$O.<bucket>.M.<name>`:
/// `name, description, headers, metadata, options{max_chunk_size}, bucket, nuid, size, mtime,
/// chunks, digest, deleted`.
public struct ObjectInfo: Codable, Sendable, Equatable {
    /// The object name.
    public var name: String
    /// The writer's description, if any.
    public var description: String?
    /// The writer's headers, if any.
    public var headers: [String: [String]]?
    /// The writer's metadata, if any.
    public var metadata: [String: String]?
    /// The chunk size the writer used.
    public var chunkSize: Int?
    /// The bucket it is stored in.
    public var bucket: String
    /// The unique id of this version: its chunks are on `$O.<bucket>.C.<nuid>`.
    public var nuid: String
    /// Size in bytes.
    public var size: UInt64
    /// When this version was stored (the time of its metadata message when read from a bucket).
    public var modified: Date?
    /// The number of chunk messages.
    public var chunks: Int
    /// `SHA-256=` and the base64url (padded) SHA-256 of the content; nil for deleted objects.
    public var digest: String?
    /// True for the marker left by a delete.
    public var deleted: Bool
    /// True when the object is a link to another object or bucket (not followed by this client).
    public var isLink: Bool { link != nil }

    var link: Link?

    struct Link: Codable, Equatable {
        var bucket: String
        var name: String?
    }

    private struct Options: Codable {
        var link: Link?
        var maxChunkSize: Int?
        enum CodingKeys: String, CodingKey { case link, maxChunkSize = "max_chunk_size" }
    }

    enum CodingKeys: String, CodingKey {
        case name, description, headers, metadata, options, bucket, nuid, size, mtime, chunks, digest, deleted
    }

    /// The metadata of a version of `meta` stored with these chunks.
    package init(meta: ObjectMeta, bucket: String, nuid: String, size: UInt64, chunks: Int, digest: String?, modified: Date?) {
        self.name = meta.name
        self.description = meta.description
        self.headers = meta.headers
        self.metadata = meta.metadata
        self.chunkSize = meta.chunkSize
        self.bucket = bucket
        self.nuid = nuid
        self.size = size
        self.modified = modified
        self.chunks = chunks
        self.digest = digest
        self.deleted = false
    }

    /// Decodes an object's metadata as any NATS client writes it (headers as lists or as strings).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        // Go writes headers as {"Name":["value"]}; other writers may use plain strings.
        if let multi = try? c.decodeIfPresent([String: [String]].self, forKey: .headers) {
            headers = multi
        } else if let single = try? c.decodeIfPresent([String: String].self, forKey: .headers) {
            headers = single.mapValues { [$0] }
        }
        metadata = try? c.decodeIfPresent([String: String].self, forKey: .metadata)
        let options = try? c.decodeIfPresent(Options.self, forKey: .options)
        chunkSize = options?.maxChunkSize
        link = options?.link
        bucket = try c.decodeIfPresent(String.self, forKey: .bucket) ?? ""
        nuid = try c.decodeIfPresent(String.self, forKey: .nuid) ?? ""
        size = try c.decodeIfPresent(UInt64.self, forKey: .size) ?? 0
        modified = (try? c.decodeIfPresent(String.self, forKey: .mtime)).flatMap { $0.flatMap(RFC3339.parse) }
        chunks = try c.decodeIfPresent(Int.self, forKey: .chunks) ?? 0
        digest = try c.decodeIfPresent(String.self, forKey: .digest).flatMap { $0.isEmpty ? nil : $0 }
        deleted = try c.decodeIfPresent(Bool.self, forKey: .deleted) ?? false
    }

    /// Encodes the metadata as the Go client writes it (`mtime` RFC 3339, `options` only when set).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        if let description, !description.isEmpty { try c.encode(description, forKey: .description) }
        if let headers, !headers.isEmpty { try c.encode(headers, forKey: .headers) }
        if let metadata, !metadata.isEmpty { try c.encode(metadata, forKey: .metadata) }
        if chunkSize != nil || link != nil {
            try c.encode(Options(link: link, maxChunkSize: chunkSize), forKey: .options)
        }
        try c.encode(bucket, forKey: .bucket)
        try c.encode(nuid, forKey: .nuid)
        try c.encode(size, forKey: .size)
        try c.encode(RFC3339.format(modified ?? Date()), forKey: .mtime)
        try c.encode(chunks, forKey: .chunks)
        if let digest, !digest.isEmpty { try c.encode(digest, forKey: .digest) }
        if deleted { try c.encode(true, forKey: .deleted) }
    }
}
