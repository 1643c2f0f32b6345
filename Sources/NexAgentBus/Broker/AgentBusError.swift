/// Why the agent bus could not start.
public enum AgentBusError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The bus only ever listens on loopback (127.0.0.0/8 or ::1).
    case notLoopback(host: String)
    case bindFailed(host: String, port: Int, reason: String)
    case notStarted
    /// The bus is shutting down (or has shut down).
    case shutDown

    public var description: String {
        switch self {
        case .notLoopback(let host):
            "the agent bus listens only on a loopback address (127.0.0.0/8 or ::1); '\(host)' is not one"
        case .bindFailed(let host, let port, let reason):
            "the agent bus cannot listen on \(host):\(port): \(reason)"
        case .notStarted:
            "the agent bus is not running"
        case .shutDown:
            "the agent bus is shutting down"
        }
    }

    /// Whether `host` is a literal loopback address. Names (even `localhost`) are refused:
    /// what they resolve to is not ours to trust.
    public static func isLoopback(_ host: String) -> Bool {
        if host == "::1" || host == "[::1]" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { part in
            guard let value = Int(part), (0...255).contains(value), part.count <= 3 else { return false }
            return String(value) == part
        }
    }
}
