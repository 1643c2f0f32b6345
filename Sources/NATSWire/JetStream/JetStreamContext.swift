import NIOCore

/// JetStream through one ``NATSClient``: the API prefix (with an optional JetStream domain) and
/// the timeout of API requests.
///
/// ```swift
/// let js = try client.jetStream()                 // $JS.API
/// let hub = try client.jetStream(domain: "hub")   // $JS.hub.API
/// let info = try await js.accountInfo()
/// let kv = try await js.createKeyValue(KeyValueConfig(bucket: "settings"))
/// ```
///
/// The context is a value: copy it, change ``timeout``, share it between tasks.
public struct JetStreamContext: Sendable {
    /// The client requests and publishes go through.
    public let client: NATSClient
    /// The JetStream domain, when one was given.
    public let domain: String?
    /// The API subject prefix without the trailing dot: `$JS.API` or `$JS.<domain>.API`.
    public let apiPrefix: String
    /// How long to wait for the answer of an API request or a publish acknowledgement.
    public var timeout: Duration

    /// A context for `client`, optionally in JetStream domain `domain`.
    ///
    /// Throws ``JetStreamError`` (``JetStreamError/Kind/invalidArgument``) when the domain is
    /// empty or holds a dot, a wildcard or a blank.
    public init(client: NATSClient, domain: String? = nil, timeout: Duration = .seconds(5)) throws {
        if let domain {
            try Self.validateName(domain, what: "domain")
        }
        self.client = client
        self.domain = domain
        self.apiPrefix = domain.map { "$JS.\($0).API" } ?? "$JS.API"
        self.timeout = timeout
    }

    /// A context with an explicit API prefix (for an API imported from another account),
    /// e.g. `"$JS.acme.API"`. A trailing dot is removed.
    public init(client: NATSClient, apiPrefix: String, timeout: Duration = .seconds(5)) throws {
        var prefix = apiPrefix
        while prefix.hasSuffix(".") { prefix.removeLast() }
        try NATSSubject.validateSubscribe(prefix)
        self.client = client
        self.domain = nil
        self.apiPrefix = prefix
        self.timeout = timeout
    }

    /// The full subject of an API call such as `STREAM.INFO.orders`.
    func apiSubject(_ path: String) -> String { "\(apiPrefix).\(path)" }

    /// Sends an API request with a JSON body (or none) and decodes the reply.
    func apiRequest<Response: Decodable>(
        _ path: String, body: (some Encodable)?, as type: Response.Type = Response.self
    ) async throws -> Response {
        let payload = try body.map { try JetStreamJSON.encode($0) } ?? ByteBuffer()
        return try await apiRequest(path, payload: payload, as: type)
    }

    func apiRequest<Response: Decodable>(
        _ path: String, payload: ByteBuffer = ByteBuffer(), as type: Response.Type = Response.self
    ) async throws -> Response {
        let subject = apiSubject(path)
        let reply = try await apiMessage(subject, payload: payload)
        return try JetStreamJSON.decodeReply(type, from: reply, subject: subject)
    }

    /// Sends a request to an API subject; no responders becomes ``JetStreamError/Kind/notAvailable``.
    func apiMessage(_ subject: String, payload: ByteBuffer) async throws -> NATSMessage {
        do {
            return try await client.request(payload, to: subject, timeout: timeout)
        } catch NATSError.Code.noResponders {
            throw JetStreamError.notAvailable(
                subject, "no responders: JetStream is not enabled for this account"
                    + (domain.map { " or domain '\($0)' is unknown" } ?? ""))
        }
    }

    /// Stream, consumer and domain names: non-empty, without `.`, `*`, `>`, blanks or control characters.
    static func validateName(_ name: String, what: String) throws(JetStreamError) {
        guard !name.isEmpty else { throw .invalidArgument(name, "a \(what) name must not be empty") }
        for byte in name.utf8 where byte <= 0x20 || byte == 0x7F || byte == UInt8(ascii: ".")
            || byte == UInt8(ascii: "*") || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "/")
            || byte == UInt8(ascii: "\\")
        {
            throw .invalidArgument(name, "a \(what) name must not contain '.', '*', '>', '/', '\\' or blanks")
        }
    }
}
