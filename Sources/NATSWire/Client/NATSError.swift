/// An error of the NATSWire client. Each says what failed and names the subject, server or
/// value involved.
///
/// A struct with a ``Code`` rather than an enum (postgres-nio's `PSQLError` shape): match on
/// the code, read the details that kind of failure carries, and new codes never break a
/// `switch`. The static members build errors the way the former enum cases were spelled
/// (`NATSError.noResponders(subject:)`, `NATSError.connectionClosed`).
///
/// ```swift
/// do {
///     let reply = try await client.request("ping", to: "svc.health", timeout: .seconds(2))
///     print(reply.string)
/// } catch NATSError.Code.noResponders {
///     print("nobody serves svc.health")
/// } catch let error as NATSError where error.code == .timeout {
///     print("no reply after \(error.seconds ?? 0) s")
/// }
/// ```
public struct NATSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure a ``NATSError`` is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case connectionFailed, authorizationFailed, serverError, permissionViolation, protocolViolation
            case staleConnection, connectionClosed, disconnected, timeout, noResponders, invalidSubject
            case invalidHeader, payloadTooLarge, reconnectBufferFull, invalidURL, invalidCredentials
            case unsupported, tlsFailed, subscriptionClosed
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No server in the list could be reached or completed the handshake.
        public static let connectionFailed = Code(.connectionFailed)
        /// The server refused the credentials.
        public static let authorizationFailed = Code(.authorizationFailed)
        /// The server sent a fatal `-ERR` and closed the connection.
        public static let serverError = Code(.serverError)
        /// The server refused a publish or subscription for lack of permission.
        public static let permissionViolation = Code(.permissionViolation)
        /// The server sent bytes that are not NATS.
        public static let protocolViolation = Code(.protocolViolation)
        /// The server stopped answering keep-alive `PING`s.
        public static let staleConnection = Code(.staleConnection)
        /// The client is closed.
        public static let connectionClosed = Code(.connectionClosed)
        /// The connection was lost and the client is reconnecting.
        public static let disconnected = Code(.disconnected)
        /// An operation did not finish in time.
        public static let timeout = Code(.timeout)
        /// Nobody is subscribed to a request's subject.
        public static let noResponders = Code(.noResponders)
        /// A subject, queue group or inbox is not valid NATS.
        public static let invalidSubject = Code(.invalidSubject)
        /// A header cannot be encoded.
        public static let invalidHeader = Code(.invalidHeader)
        /// A message is larger than the server's `max_payload`.
        public static let payloadTooLarge = Code(.payloadTooLarge)
        /// A publish made while disconnected did not fit the reconnect buffer.
        public static let reconnectBufferFull = Code(.reconnectBufferFull)
        /// A server URL does not parse.
        public static let invalidURL = Code(.invalidURL)
        /// The configured credentials cannot be used.
        public static let invalidCredentials = Code(.invalidCredentials)
        /// The server requires something this client was not configured for, or the client
        /// cannot do what was asked in its current state.
        public static let unsupported = Code(.unsupported)
        /// TLS could not be set up, or the server's certificate did not verify.
        public static let tlsFailed = Code(.tlsFailed)
        /// A subscription was already unsubscribed, or its connection closed.
        public static let subscriptionClosed = Code(.subscriptionClosed)

        /// The code's name, as the static member is spelled (`noResponders`, `timeout`, ...).
        public var description: String { base.rawValue }

        /// Matches a thrown error by code: `catch NATSError.Code.noResponders { … }`, or
        /// `case NATSError.Code.timeout:` in a `switch` over any error.
        public static func ~= (code: Code, error: any Error) -> Bool {
            (error as? NATSError)?.code == code
        }
    }

    /// The details of each kind of failure, as the enum this type replaces carried them.
    enum Detail: Sendable, Equatable {
        case connectionFailed(servers: [String], reason: String)
        case authorizationFailed(server: String, message: String)
        case serverError(String)
        case permissionViolation(String)
        case protocolViolation(NATSProtocolError)
        case staleConnection
        case connectionClosed
        case disconnected
        case timeout(operation: String, seconds: Double)
        case noResponders(subject: String)
        case invalidSubject(String, reason: String)
        case invalidHeader(name: String, reason: String)
        case payloadTooLarge(size: Int, maxPayload: Int)
        case reconnectBufferFull(limit: Int)
        case invalidURL(String, reason: String)
        case invalidCredentials(String)
        case unsupported(String)
        case tlsFailed(server: String, reason: String)
        case subscriptionClosed(subject: String)
    }

    /// What failed, with its details; the public properties read it.
    let detail: Detail

    private init(_ detail: Detail) {
        self.detail = detail
    }

    // MARK: Making errors (the spellings of the former enum cases)

    /// No server in `servers` could be reached or completed the handshake; `reason` is the last failure.
    public static func connectionFailed(servers: [String], reason: String) -> NATSError {
        NATSError(.connectionFailed(servers: servers, reason: reason))
    }

    /// `server` refused the credentials (`-ERR 'Authorization Violation'` and friends) with `message`.
    public static func authorizationFailed(server: String, message: String) -> NATSError {
        NATSError(.authorizationFailed(server: server, message: message))
    }

    /// The server sent the fatal `-ERR` `message` and closed the connection.
    public static func serverError(_ message: String) -> NATSError { NATSError(.serverError(message)) }

    /// The server refused a publish or subscription for lack of permission (`message` is its
    /// `-ERR` text); the connection stays up.
    public static func permissionViolation(_ message: String) -> NATSError { NATSError(.permissionViolation(message)) }

    /// The server sent bytes that are not NATS; `error` names them.
    public static func protocolViolation(_ error: NATSProtocolError) -> NATSError { NATSError(.protocolViolation(error)) }

    /// No `PONG` came back for ``NATSClientOptions/maxPingsOutstanding`` keep-alive `PING`s.
    public static let staleConnection = NATSError(.staleConnection)

    /// The operation needs a live connection, and the client is closed.
    public static let connectionClosed = NATSError(.connectionClosed)

    /// The operation needs a live connection, and the client is reconnecting.
    public static let disconnected = NATSError(.disconnected)

    /// `operation` (a request, flush, drain or connect) did not finish within `seconds`.
    public static func timeout(operation: String, seconds: Double) -> NATSError {
        NATSError(.timeout(operation: operation, seconds: seconds))
    }

    /// A request found nobody subscribed to `subject` (status 503).
    public static func noResponders(subject: String) -> NATSError { NATSError(.noResponders(subject: subject)) }

    /// `subject` (a subject, queue group or inbox) is not valid NATS: `reason` says why.
    public static func invalidSubject(_ subject: String, reason: String) -> NATSError {
        NATSError(.invalidSubject(subject, reason: reason))
    }

    /// Header `name` cannot be encoded: `reason` says why.
    public static func invalidHeader(name: String, reason: String) -> NATSError {
        NATSError(.invalidHeader(name: name, reason: reason))
    }

    /// A message of `size` bytes exceeds the server's `max_payload` of `maxPayload` bytes.
    public static func payloadTooLarge(size: Int, maxPayload: Int) -> NATSError {
        NATSError(.payloadTooLarge(size: size, maxPayload: maxPayload))
    }

    /// While disconnected, publishes are buffered up to `limit` bytes
    /// (``NATSClientOptions/reconnectBufferSize``); this one did not fit.
    public static func reconnectBufferFull(limit: Int) -> NATSError { NATSError(.reconnectBufferFull(limit: limit)) }

    /// Server URL `url` does not parse: `reason` says why.
    public static func invalidURL(_ url: String, reason: String) -> NATSError { NATSError(.invalidURL(url, reason: reason)) }

    /// The credentials given to the client cannot be used (missing file, bad seed): `reason` says why.
    public static func invalidCredentials(_ reason: String) -> NATSError { NATSError(.invalidCredentials(reason)) }

    /// `what` is not supported: the server requires something this client was not configured
    /// for, or the client cannot do it in its current state.
    public static func unsupported(_ what: String) -> NATSError { NATSError(.unsupported(what)) }

    /// TLS with `server` (empty when no server is involved yet) could not be set up or did not
    /// verify; `reason` says which check failed.
    public static func tlsFailed(server: String, reason: String) -> NATSError {
        NATSError(.tlsFailed(server: server, reason: reason))
    }

    /// The subscription to `subject` was already unsubscribed, or its connection closed.
    public static func subscriptionClosed(subject: String) -> NATSError { NATSError(.subscriptionClosed(subject: subject)) }

    // MARK: Reading errors

    /// What kind of failure this is: match on it.
    public var code: Code {
        switch detail {
        case .connectionFailed: .connectionFailed
        case .authorizationFailed: .authorizationFailed
        case .serverError: .serverError
        case .permissionViolation: .permissionViolation
        case .protocolViolation: .protocolViolation
        case .staleConnection: .staleConnection
        case .connectionClosed: .connectionClosed
        case .disconnected: .disconnected
        case .timeout: .timeout
        case .noResponders: .noResponders
        case .invalidSubject: .invalidSubject
        case .invalidHeader: .invalidHeader
        case .payloadTooLarge: .payloadTooLarge
        case .reconnectBufferFull: .reconnectBufferFull
        case .invalidURL: .invalidURL
        case .invalidCredentials: .invalidCredentials
        case .unsupported: .unsupported
        case .tlsFailed: .tlsFailed
        case .subscriptionClosed: .subscriptionClosed
        }
    }

    /// The detail in words: the server's message (``Code/authorizationFailed``,
    /// ``Code/serverError``, ``Code/permissionViolation``), the reason of a refusal or failure
    /// (``Code/connectionFailed``, ``Code/invalidSubject``, ``Code/invalidHeader``,
    /// ``Code/invalidURL``, ``Code/invalidCredentials``, ``Code/tlsFailed``), what is not
    /// supported (``Code/unsupported``), or the protocol error; nil for the other codes.
    public var reason: String? {
        switch detail {
        case .connectionFailed(_, let reason), .invalidSubject(_, let reason), .invalidHeader(_, let reason),
             .invalidURL(_, let reason), .tlsFailed(_, let reason):
            reason
        case .authorizationFailed(_, let message), .serverError(let message), .permissionViolation(let message),
             .invalidCredentials(let message), .unsupported(let message):
            message
        case .protocolViolation(let error): error.description
        default: nil
        }
    }

    /// The subject involved: for ``Code/noResponders``, ``Code/invalidSubject`` (the invalid
    /// subject, queue group or inbox) and ``Code/subscriptionClosed``; nil otherwise.
    public var subject: String? {
        switch detail {
        case .noResponders(let subject), .invalidSubject(let subject, _), .subscriptionClosed(let subject): subject
        default: nil
        }
    }

    /// The servers involved: the list tried (``Code/connectionFailed``), or the one server
    /// (``Code/authorizationFailed``, and ``Code/tlsFailed`` when a server was involved); empty otherwise.
    public var servers: [String] {
        switch detail {
        case .connectionFailed(let servers, _): servers
        case .authorizationFailed(let server, _): [server]
        case .tlsFailed(let server, _) where !server.isEmpty: [server]
        default: []
        }
    }

    /// What timed out (``Code/timeout``): `request to '<subject>'`, `flush`, `drain`, a handshake.
    public var operation: String? {
        if case .timeout(let operation, _) = detail { return operation }
        return nil
    }

    /// How long the operation was given, in seconds (``Code/timeout``).
    public var seconds: Double? {
        if case .timeout(_, let seconds) = detail { return seconds }
        return nil
    }

    /// The size in bytes of the message that did not fit (``Code/payloadTooLarge``).
    public var size: Int? {
        if case .payloadTooLarge(let size, _) = detail { return size }
        return nil
    }

    /// The limit in bytes that was exceeded: the server's `max_payload` (``Code/payloadTooLarge``)
    /// or the reconnect buffer size (``Code/reconnectBufferFull``).
    public var limit: Int? {
        switch detail {
        case .payloadTooLarge(_, let limit), .reconnectBufferFull(let limit): limit
        default: nil
        }
    }

    /// The header name that cannot be encoded (``Code/invalidHeader``), or the URL that does not
    /// parse (``Code/invalidURL``, credentials in it included: print ``description``, which hides them).
    public var value: String? {
        switch detail {
        case .invalidHeader(let name, _), .invalidURL(let name, _): name
        default: nil
        }
    }

    /// The protocol error underneath a ``Code/protocolViolation``.
    public var protocolError: NATSProtocolError? {
        if case .protocolViolation(let error) = detail { return error }
        return nil
    }

    /// Whether the error already says which server it concerns.
    var namesServer: Bool {
        switch detail {
        case .connectionFailed, .authorizationFailed, .tlsFailed: return true
        default: return false
        }
    }

    /// One line naming what failed and the subject, server or value involved.
    public var description: String {
        switch detail {
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
