/// An artifact in the node's ``ArtifactCache``: verified against its SHA-256 when it was stored.
public struct CachedArtifact: Sendable, Equatable {
    /// The cache file, `<state>/artifacts/<sha256>`. Never hand this path to a workload: copy it
    /// with ``ArtifactCache/place(_:in:named:)``.
    public let path: String
    /// SHA-256 of the content, lowercase hex (also the file's name).
    public let sha256: String
    /// Size in bytes.
    public let size: Int
    /// True when the artifact was already cached and nothing was fetched.
    public let fromCache: Bool

    public init(path: String, sha256: String, size: Int, fromCache: Bool) {
        self.path = path
        self.sha256 = sha256
        self.size = size
        self.fromCache = fromCache
    }
}
