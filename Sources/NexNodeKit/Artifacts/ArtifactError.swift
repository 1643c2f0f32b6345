/// Why a workload artifact could not be located, fetched, verified, cached or placed.
///
/// Every case names the location or path involved. A description goes back to the deployer, so
/// it never carries what the node found: not the artifact's real hash, size or content (those
/// stay in the associated values, for the node's own log through ``operatorDetail``).
public enum ArtifactError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The location string cannot be used (an unknown scheme, an empty bucket, key or path...).
    case invalidLocation(String, reason: String)
    /// The hash the artifact must have is not a SHA-256 digest in hex (64 hex digits).
    case invalidHash(location: String, hash: String)
    /// No artifact at `location` (a missing file, object store bucket or object).
    case notFound(location: String, reason: String?)
    /// A `file://` location outside the node's `allowed_file_roots` (or none are configured).
    /// The same whether or not the file exists.
    case fileOutsideRoots(location: String)
    /// A `file://` location names something other than a regular file (a directory, a device...).
    case notARegularFile(location: String, path: String)
    /// The artifact is larger than `max_workload_bytes`.
    case tooLarge(location: String, size: Int, limit: Int)
    /// The SHA-256 of the artifact differs from the workload JWT's `hash` claim. Nothing was cached.
    case hashMismatch(location: String, claimed: String, actual: String)
    /// The artifact could not be fetched from NATS (no connection, no JetStream, a timeout...).
    case fetchFailed(location: String, reason: String)
    /// A local file or directory could not be read, written or created.
    case fileError(path: String, operation: String, reason: String)
    /// The name an artifact is to be placed under is not a plain file name.
    case invalidFileName(String, reason: String)

    public var description: String {
        switch self {
        case let .invalidLocation(location, reason):
            return "invalid artifact location '\(Self.shown(location))': \(reason)"
        case let .invalidHash(location, hash):
            return "the hash claimed for artifact \(location), '\(Self.shown(hash))', is not a SHA-256 digest (64 hex digits)"
        case let .notFound(location, reason):
            guard let reason else { return "artifact not found: \(location)" }
            return "artifact not found: \(location) (\(reason))"
        case let .fileOutsideRoots(location):
            return "artifact \(location) is not under the node's allowed_file_roots (file:// artifacts are read only from there; none are configured by default)"
        case let .notARegularFile(location, path):
            return "artifact \(location) is not a regular file: \(path)"
        case let .tooLarge(location, _, limit):
            return "artifact \(location) is larger than max_workload_bytes (\(limit))"
        case let .hashMismatch(location, claimed, _):
            return "artifact hash mismatch for \(location): it is not the artifact the workload JWT claims (\(claimed))"
        case let .fetchFailed(location, reason):
            return "cannot fetch artifact \(location): \(reason)"
        case let .fileError(path, operation, reason):
            return "cannot \(operation) \(path): \(reason)"
        case let .invalidFileName(name, reason):
            return "invalid artifact file name '\(Self.shown(name))': \(reason)"
        }
    }

    /// The description with what the node found (the real hash, the size): for the node's own
    /// log, never for a reply.
    public var operatorDetail: String {
        switch self {
        case let .tooLarge(location, size, limit): "artifact \(location) is \(size) bytes; max_workload_bytes is \(limit)"
        case let .hashMismatch(location, claimed, actual):
            "artifact hash mismatch for \(location): the workload JWT claims \(claimed), the artifact is \(actual)"
        default: description
        }
    }

    /// `text`, cut to 200 characters (with its full length) so that a hostile input cannot flood a log.
    static func shown(_ text: String) -> String {
        let limit = 200
        guard text.count > limit else { return text }
        return "\(text.prefix(limit))… (\(text.utf8.count) bytes)"
    }
}
