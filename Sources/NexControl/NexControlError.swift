/// An error of the control API: a request a node refused, a reply a client could not read, a
/// request a node cannot accept.
///
/// A struct with a ``Code`` rather than an enum (postgres-nio's `PSQLError` shape), so that
/// callers match on the code and new codes never break their `switch`:
///
/// ```swift
/// do {
///     try await client.stop(workload: id, namespace: "default", node: node)
/// } catch let error as NexControlError where error.code == .nodeRefused {
///     print("the node said: \(error.message)")
/// }
/// ```
public struct NexControlError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case nodeRefused, malformedReply, badRequest, notSupported
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The node answered with an error envelope; ``NexControlError/message`` is the node's.
        public static let nodeRefused = Code(.nodeRefused)
        /// The reply was not a control envelope of the expected shape.
        public static let malformedReply = Code(.malformedReply)
        /// A request could not be decoded or is not acceptable (a node sends it back as the
        /// envelope's `error`).
        public static let badRequest = Code(.badRequest)
        /// The node does not implement this.
        public static let notSupported = Code(.notSupported)

        /// The code's name: `nodeRefused`, `malformedReply`, `badRequest` or `notSupported`.
        public var description: String { base.rawValue }
    }

    /// What kind of failure this is: match on it.
    public var code: Code
    /// What was wrong, in words that name it (the node's own message for ``Code/nodeRefused``).
    public var message: String
    /// The control subject the error is about, when there is one.
    public var subject: String?
    /// The error underneath (for example the `DecodingError` of a malformed reply).
    public var underlying: (any Error & Sendable)?

    /// An error of `code` with `message`, optionally about `subject` and wrapping `underlying`.
    public init(code: Code, message: String, subject: String? = nil, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.subject = subject
        self.underlying = underlying
    }

    /// The node at `subject` refused the request with `message`.
    public static func nodeRefused(subject: String, message: String) -> NexControlError {
        NexControlError(code: .nodeRefused, message: message, subject: subject)
    }

    /// The reply on `subject` could not be read: `reason` says why.
    public static func malformedReply(subject: String, reason: String, underlying: (any Error & Sendable)? = nil)
        -> NexControlError
    {
        NexControlError(code: .malformedReply, message: reason, subject: subject, underlying: underlying)
    }

    /// A request that cannot be accepted; `reason` names what was wrong.
    public static func badRequest(_ reason: String) -> NexControlError {
        NexControlError(code: .badRequest, message: reason)
    }

    /// `what` is not supported.
    public static func notSupported(_ what: String) -> NexControlError {
        NexControlError(code: .notSupported, message: "\(what) is not supported yet")
    }

    /// The message, prefixed with the subject when there is one.
    public var description: String {
        switch code {
        case .malformedReply: return "\(subject.map { "\($0): " } ?? "")malformed reply: \(message)"
        default: return subject.map { "\($0): \(message)" } ?? message
        }
    }

    /// Equal when code, message and subject are; the underlying error is not compared.
    public static func == (lhs: NexControlError, rhs: NexControlError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.subject == rhs.subject
    }
}
