/// Errors of the NATSWire client. Each says what failed and names the subject, server or value involved.
public enum NATSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No server in the list could be reached or completed the handshake; the last reason is attached.
    case connectionFailed(servers: [String], reason: String)
    /// The server refused the credentials (`-ERR 'Authorization Violation'` and friends).
    case authorizationFailed(server: String, message: String)
    /// The server sent a fatal `-ERR` and closed the connection.
    case serverError(String)
    /// The server refused a publish or subscription for lack of permission; the connection stays up.
    case permissionViolation(String)
    /// The server sent bytes that are not NATS.
    case protocolViolation(NATSProtocolError)
    /// No PONG came back for `maxPingsOutstanding` keep-alive PINGs.
    case staleConnection
    /// The operation needs a live connection, and the client is closed.
    case connectionClosed
    /// The operation needs a live connection, and the client is reconnecting.
    case disconnected
    /// The operation timed out (`request`, `flush`, `drain`, connect).
    case timeout(operation: String, seconds: Double)
    /// A request found nobody subscribed to its subject (status 503).
    case noResponders(subject: String)
    /// A subject, queue group or inbox is not valid NATS.
    case invalidSubject(String, reason: String)
    /// A header cannot be encoded.
    case invalidHeader(name: String, reason: String)
    /// The message is larger than the server's `max_payload`.
    case payloadTooLarge(size: Int, maxPayload: Int)
    /// While disconnected, publishes are buffered up to the reconnect buffer size; this one did not fit.
    case reconnectBufferFull(limit: Int)
    /// A server URL does not parse.
    case invalidURL(String, reason: String)
    /// The credentials given to the client cannot be used (missing file, bad seed).
    case invalidCredentials(String)
    /// The server requires something this client was not configured for.
    case unsupported(String)
    /// TLS could not be set up or the server's certificate did not verify; the reason says which check failed.
    case tlsFailed(server: String, reason: String)
    /// The subscription was already unsubscribed or its connection closed.
    case subscriptionClosed(subject: String)

    /// Whether the error already says which server it concerns.
    var namesServer: Bool {
        switch self {
        case .connectionFailed, .authorizationFailed, .tlsFailed: return true
        default: return false
        }
    }

    /// One line naming what failed and the subject, server or value involved.
    public var description: String {
        switch self {
        case .connectionFailed(let servers, let reason):
            return "could not connect to \(servers.joined(separator: ", ")): \(reason)"
        case .authorizationFailed(let server, let message): return "\(server) refused the credentials: \(message)"
        case .serverError(let message): return "server error: \(message)"
        case .permissionViolation(let message): return "permission denied: \(message)"
        case .protocolViolation(let error): return error.description
        case .staleConnection: return "stale connection: the server stopped answering PINGs"
        case .connectionClosed: return "the connection is closed"
        case .disconnected: return "the connection was lost; the client is reconnecting"
        case .timeout(let operation, let seconds): return "\(operation) timed out after \(seconds) s"
        case .noResponders(let subject): return "no responders on '\(subject)'"
        case .invalidSubject(let subject, let reason): return "invalid subject '\(subject)': \(reason)"
        case .invalidHeader(let name, let reason): return "invalid header '\(name)': \(reason)"
        case .payloadTooLarge(let size, let maxPayload):
            return "message of \(size) bytes exceeds the server's max_payload of \(maxPayload)"
        case .reconnectBufferFull(let limit): return "reconnect buffer of \(limit) bytes is full"
        case .invalidURL(let url, let reason): return "invalid server URL '\(url.redactingURLCredentials)': \(reason)"
        case .invalidCredentials(let reason): return "invalid credentials: \(reason)"
        case .unsupported(let what): return "unsupported: \(what)"
        case .tlsFailed(let server, let reason): return server.isEmpty ? "TLS: \(reason)" : "TLS with \(server): \(reason)"
        case .subscriptionClosed(let subject): return "the subscription to '\(subject)' is closed"
        }
    }
}
