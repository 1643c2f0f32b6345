/// Errors of the control API, as seen by clients and servers.
public enum NexControlError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The node answered with an error envelope; `message` is the node's.
    case nodeRefused(subject: String, message: String)
    /// The reply was not a control envelope of the expected shape.
    case malformedReply(subject: String, reason: String)
    /// A request could not be decoded or is not acceptable; sent back as the envelope's `error`.
    case badRequest(String)
    /// The node does not implement this yet.
    case notSupported(String)

    public var description: String {
        switch self {
        case .nodeRefused(let subject, let message): return "\(subject): \(message)"
        case .malformedReply(let subject, let reason): return "\(subject): malformed reply: \(reason)"
        case .badRequest(let reason): return reason
        case .notSupported(let what): return "\(what) is not supported yet"
        }
    }
}
