/// Failures of the agent's bus connection; each names the subject involved.
public enum AgentConnectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The node never answered the handshake.
    case handshakeFailed(subject: String, attempts: Int, reason: String)

    public var description: String {
        switch self {
        case .handshakeFailed(let subject, let attempts, let reason):
            return "handshake on \(subject) failed after \(attempts) attempt(s): \(reason)"
        }
    }
}
