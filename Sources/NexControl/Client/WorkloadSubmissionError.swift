/// Why a workload could not be prepared for deployment, or stopped, on the client side. Each
/// error names the argument, file, node or workload involved.
///
/// A struct with a ``Code`` (the shape of ``NexControlError``): match on the code; the static
/// members build each error the way the former enum cases were spelled.
///
/// ```swift
/// do {
///     let submission = try WorkloadSubmission(name: "echo", type: kind, location: location, artifactHash: hash)
/// } catch let error as WorkloadSubmissionError where error.code == .unknownType {
///     print("no such workload type: \(error.value ?? "")")
/// }
/// ```
public struct WorkloadSubmissionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure a ``WorkloadSubmissionError`` is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidEnvironmentPair, invalidLocation, unreadableArtifact, unknownArtifactDigest, unknownType
            case fieldNotAllowed, notStarted, noNodeAvailable, workloadNotFound
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// An environment argument is not `KEY=VALUE` with a non-empty key.
        public static let invalidEnvironmentPair = Code(.invalidEnvironmentPair)
        /// The artifact URL is neither `nats://BUCKET/KEY` nor `file:///absolute/path`.
        public static let invalidLocation = Code(.invalidLocation)
        /// The artifact file cannot be read.
        public static let unreadableArtifact = Code(.unreadableArtifact)
        /// The artifact's SHA-256 is not known and could not be computed.
        public static let unknownArtifactDigest = Code(.unknownArtifactDigest)
        /// The workload type is not `native`, `wasm` or `javascript` (`v8`).
        public static let unknownType = Code(.unknownType)
        /// A field of the deploy does not fit the workload type.
        public static let fieldNotAllowed = Code(.fieldNotAllowed)
        /// The node answered, but did not start the workload.
        public static let notStarted = Code(.notStarted)
        /// No node answered the auction.
        public static let noNodeAvailable = Code(.noNodeAvailable)
        /// No workload with the id or name answered a workload ping.
        public static let workloadNotFound = Code(.workloadNotFound)

        /// The code's name, as the static member is spelled (`unknownType`, `notStarted`, ...).
        public var description: String { base.rawValue }
    }

    /// The details of each kind of failure, as the enum this type replaces carried them.
    enum Detail: Sendable, Equatable {
        case invalidEnvironmentPair(String)
        case invalidLocation(String, reason: String)
        case unreadableArtifact(path: String, reason: String)
        case unknownArtifactDigest(location: String, reason: String)
        case unknownType(String)
        case fieldNotAllowed(field: String, type: String, reason: String)
        case notStarted(node: String, name: String)
        case noNodeAvailable(reason: String)
        case workloadNotFound(String, node: String?)
    }

    /// What failed, with its details; the public properties read it.
    let detail: Detail

    private init(_ detail: Detail) {
        self.detail = detail
    }

    /// Environment argument `pair` is not `KEY=VALUE` with a non-empty key.
    public static func invalidEnvironmentPair(_ pair: String) -> Self { Self(.invalidEnvironmentPair(pair)) }

    /// Artifact URL `location` is neither `nats://BUCKET/KEY` nor `file:///absolute/path`: `reason` says why.
    public static func invalidLocation(_ location: String, reason: String) -> Self {
        Self(.invalidLocation(location, reason: reason))
    }

    /// The artifact file at `path` cannot be read: `reason` says why.
    public static func unreadableArtifact(path: String, reason: String) -> Self {
        Self(.unreadableArtifact(path: path, reason: reason))
    }

    /// The SHA-256 of the artifact at `location` is not known (the object store object has no
    /// usable digest and could not be hashed, or the given hash is not SHA-256 hex).
    public static func unknownArtifactDigest(location: String, reason: String) -> Self {
        Self(.unknownArtifactDigest(location: location, reason: reason))
    }

    /// Workload type `type` is not `native`, `wasm` or `javascript` (`v8`).
    public static func unknownType(_ type: String) -> Self { Self(.unknownType(type)) }

    /// Deploy field `field` does not fit a `type` workload (`trigger_subjects` for a service,
    /// `essential` for a function): `reason` says why.
    public static func fieldNotAllowed(field: String, type: String, reason: String) -> Self {
        Self(.fieldNotAllowed(field: field, type: type, reason: reason))
    }

    /// Node `node` answered, but did not start workload `name`.
    public static func notStarted(node: String, name: String) -> Self { Self(.notStarted(node: node, name: name)) }

    /// No node answered the auction: `reason` says what was asked for.
    public static func noNodeAvailable(reason: String) -> Self { Self(.noNodeAvailable(reason: reason)) }

    /// No workload with id or name `workload` answered a workload ping (on `node`, when given).
    public static func workloadNotFound(_ workload: String, node: String?) -> Self {
        Self(.workloadNotFound(workload, node: node))
    }

    /// What kind of failure this is: match on it.
    public var code: Code {
        switch detail {
        case .invalidEnvironmentPair: .invalidEnvironmentPair
        case .invalidLocation: .invalidLocation
        case .unreadableArtifact: .unreadableArtifact
        case .unknownArtifactDigest: .unknownArtifactDigest
        case .unknownType: .unknownType
        case .fieldNotAllowed: .fieldNotAllowed
        case .notStarted: .notStarted
        case .noNodeAvailable: .noNodeAvailable
        case .workloadNotFound: .workloadNotFound
        }
    }

    /// The value the error is about: the environment argument, the artifact location or path,
    /// the workload type, the refused field, or the workload (name, or id or name for
    /// ``Code/workloadNotFound``); nil for ``Code/noNodeAvailable``.
    public var value: String? {
        switch detail {
        case .invalidEnvironmentPair(let value), .invalidLocation(let value, _), .unreadableArtifact(let value, _),
             .unknownArtifactDigest(let value, _), .unknownType(let value), .fieldNotAllowed(let value, _, _),
             .notStarted(_, let value), .workloadNotFound(let value, _):
            value
        case .noNodeAvailable: nil
        }
    }

    /// The node involved (``Code/notStarted``, and ``Code/workloadNotFound`` when one was named).
    public var node: String? {
        switch detail {
        case .notStarted(let node, _): node
        case .workloadNotFound(_, let node): node
        default: nil
        }
    }

    /// Why, in words, where the error carries a reason.
    public var reason: String? {
        switch detail {
        case .invalidLocation(_, let reason), .unreadableArtifact(_, let reason), .unknownArtifactDigest(_, let reason),
             .fieldNotAllowed(_, _, let reason), .noNodeAvailable(let reason):
            reason
        default: nil
        }
    }

    /// One line naming the argument, file, node or workload involved.
    public var description: String {
        switch detail {
        case let .invalidEnvironmentPair(pair):
            "environment argument '\(pair)' is not KEY=VALUE"
        case let .invalidLocation(location, reason):
            "artifact location '\(location)': \(reason)"
        case let .unreadableArtifact(path, reason):
            "cannot read artifact \(path): \(reason)"
        case let .unknownArtifactDigest(location, reason):
            "cannot find the SHA-256 of artifact \(location): \(reason)"
        case let .unknownType(type):
            "unknown workload type '\(type)'; use native, wasm, javascript or v8"
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
