/// Why a key file could not be read, created or written. Each error names the file.
///
/// A struct with a ``Code`` (the shape of ``NexControlError``): match on the code; the static
/// members build each error the way the former enum cases were spelled.
public struct NexKeyStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure a ``NexKeyStoreError`` is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case fileExists, cannotWrite, unreadable, notASeed, generationFailed
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The file exists; keys are never overwritten.
        public static let fileExists = Code(.fileExists)
        /// The file or its directory could not be written.
        public static let cannotWrite = Code(.cannotWrite)
        /// The file exists but could not be read, or does not exist.
        public static let unreadable = Code(.unreadable)
        /// The file does not hold a seed of the expected kind.
        public static let notASeed = Code(.notASeed)
        /// No key pair could be generated.
        public static let generationFailed = Code(.generationFailed)

        /// The code's name, as the static member is spelled (`fileExists`, `notASeed`, ...).
        public var description: String { base.rawValue }
    }

    /// What kind of failure this is: match on it.
    public let code: Code
    /// The key file involved; nil for ``Code/generationFailed``.
    public let path: String?
    /// Why, in words; nil for ``Code/fileExists``.
    public let reason: String?

    private init(_ code: Code, path: String?, reason: String?) {
        self.code = code
        self.path = path
        self.reason = reason
    }

    /// The file at `path` exists; keys are never overwritten.
    public static func fileExists(path: String) -> Self { Self(.fileExists, path: path, reason: nil) }

    /// The file at `path` or its directory could not be written: `reason` says why.
    public static func cannotWrite(path: String, reason: String) -> Self { Self(.cannotWrite, path: path, reason: reason) }

    /// The file at `path` could not be read: `reason` says why (`no such file`, `permission denied`).
    public static func unreadable(path: String, reason: String) -> Self { Self(.unreadable, path: path, reason: reason) }

    /// The file at `path` does not hold a seed of the expected kind: `reason` says why.
    public static func notASeed(path: String, reason: String) -> Self { Self(.notASeed, path: path, reason: reason) }

    /// No key pair could be generated: `reason` says why.
    public static func generationFailed(reason: String) -> Self { Self(.generationFailed, path: nil, reason: reason) }

    /// One line naming the file and what went wrong.
    public var description: String {
        let path = path ?? "", reason = reason ?? ""
        switch code {
        case .fileExists: return "\(path) already exists; not overwriting it"
        case .cannotWrite: return "cannot write \(path): \(reason)"
        case .unreadable: return "cannot read key file \(path): \(reason)"
        case .notASeed: return "key file \(path) does not hold a usable seed: \(reason)"
        default: return "cannot generate a key: \(reason)"
        }
    }
}
