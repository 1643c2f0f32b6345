/// Why a workload could not be prepared for deployment, or stopped, on the client side.
/// Each case names the argument, file, node or workload involved.
public enum WorkloadSubmissionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An environment argument is not `KEY=VALUE` with a non-empty key.
    case invalidEnvironmentPair(String)
    /// The artifact URL is neither `nats://BUCKET/KEY` nor `file:///absolute/path`.
    case invalidLocation(String, reason: String)
    /// The artifact file cannot be read.
    case unreadableArtifact(path: String, reason: String)
    /// The object store object has no usable digest and could not be hashed.
    case unknownArtifactDigest(location: String, reason: String)
    /// The workload type is not `native`, `wasm` or `javascript` (`v8`).
    case unknownType(String)
    /// A field of the deploy that does not fit the workload type (`trigger_subjects` for a
    /// service, `essential` for a function).
    case fieldNotAllowed(field: String, type: String, reason: String)
    /// The node answered, but did not start the workload.
    case notStarted(node: String, name: String)
    /// No node answered the auction.
    case noNodeAvailable(reason: String)
    /// No workload with this id (or name) answered a workload ping.
    case workloadNotFound(String, node: String?)

    /// One line naming the argument, file, node or workload involved.
    public var description: String {
        switch self {
        case let .invalidEnvironmentPair(pair):
            "environment argument '\(pair)' is not KEY=VALUE"
        case let .invalidLocation(location, reason):
            "artifact location '\(location)': \(reason)"
        case let .unreadableArtifact(path, reason):
            "cannot read artifact \(path): \(reason)"
        case let .unknownArtifactDigest(location, reason):
            "cannot find the SHA-256 of artifact \(location): \(reason)"
        case let .unknownType(type):
            "unknown workload type '\(type)'; use native, wasm or javascript"
        case let .fieldNotAllowed(field, type, reason):
            "\(field) is not allowed for a \(type) workload: \(reason)"
        case let .notStarted(node, name):
            "node \(node) did not start workload '\(name)'"
        case let .noNodeAvailable(reason):
            "no node available: \(reason)"
        case let .workloadNotFound(workload, node):
            "no workload '\(workload)' answered a workload ping" + (node.map { " on node \($0)" } ?? "")
        }
    }
}
