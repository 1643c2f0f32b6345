/// What the writer of an object says about it: its name and optional description, headers and
/// metadata, and the chunk size to store it with.
public struct ObjectMeta: Sendable, Equatable {
    /// The object name: any non-empty text (it is base64url-encoded into the metadata subject).
    public var name: String
    /// A description stored with the object.
    public var description: String?
    /// Headers stored with the object (Go's `nats.Header` shape).
    public var headers: [String: [String]]?
    /// Free-form metadata stored with the object.
    public var metadata: [String: String]?
    /// Bytes per chunk message; 128 KiB when nil. Must fit the server's max payload.
    public var chunkSize: Int?

    /// Metadata for an object named `name`.
    public init(
        name: String, description: String? = nil, headers: [String: [String]]? = nil, metadata: [String: String]? = nil,
        chunkSize: Int? = nil
    ) {
        self.name = name
        self.description = description
        self.headers = headers
        self.metadata = metadata
        self.chunkSize = chunkSize
    }
}
