/// The `INFO` a NATS server sends on connect and whenever its cluster view changes.
public struct ServerInfo: Codable, Sendable, Hashable {
    /// `server_id`: the server's public server nkey.
    public var serverID: String
    /// `server_name`: the server's configured name.
    public var serverName: String?
    /// `version`: the nats-server version.
    public var version: String
    /// `host`: the address the server listens on.
    public var host: String?
    /// `port`: the port the server listens on.
    public var port: Int?
    /// `headers`: the server supports headers (`HPUB`, `HMSG`).
    public var headers: Bool
    /// `max_payload`: the largest message the server accepts, in bytes (headers included).
    public var maxPayload: Int
    /// `proto`: the protocol version the server speaks.
    public var proto: Int
    /// `client_id`: the id the server gave this connection.
    public var clientID: UInt64?
    /// `auth_required`: the client must authenticate in `CONNECT`.
    public var authRequired: Bool
    /// `tls_required`: the client must upgrade to TLS before `CONNECT`.
    public var tlsRequired: Bool
    /// `tls_verify`: the server requires and verifies a client certificate.
    public var tlsVerify: Bool
    /// `tls_available`: the server accepts TLS but does not require it.
    public var tlsAvailable: Bool
    /// Other servers of the cluster clients may connect to (`host:port`).
    public var connectURLs: [String]
    /// Set when the server entered lame-duck mode and will shut down soon.
    public var lameDuckMode: Bool
    /// `jetstream`: JetStream is enabled on this server.
    public var jetStream: Bool
    /// `nonce`: the challenge a client signs with its nkey (the `sig` of its `CONNECT`).
    public var nonce: String?
    /// `cluster`: the name of the server's cluster.
    public var cluster: String?
    /// `domain`: the server's JetStream domain.
    public var domain: String?
    /// `client_ip`: this client's address as the server sees it.
    public var clientIP: String?

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id", serverName = "server_name", version, host, port, headers
        case maxPayload = "max_payload", proto, clientID = "client_id", authRequired = "auth_required"
        case tlsRequired = "tls_required", tlsVerify = "tls_verify", tlsAvailable = "tls_available"
        case connectURLs = "connect_urls", lameDuckMode = "ldm", jetStream = "jetstream", nonce, cluster, domain
        case clientIP = "client_ip"
    }

    /// Server info; the defaults are those a plain server without TLS, auth or JetStream sends.
    package init(
        serverID: String, serverName: String? = nil, version: String, host: String? = nil, port: Int? = nil,
        headers: Bool = true, maxPayload: Int = 1_048_576, proto: Int = 1, clientID: UInt64? = nil,
        authRequired: Bool = false, tlsRequired: Bool = false, tlsVerify: Bool = false, tlsAvailable: Bool = false,
        connectURLs: [String] = [], lameDuckMode: Bool = false, jetStream: Bool = false, nonce: String? = nil,
        cluster: String? = nil, domain: String? = nil, clientIP: String? = nil
    ) {
        self.serverID = serverID; self.serverName = serverName; self.version = version; self.host = host
        self.port = port; self.headers = headers; self.maxPayload = maxPayload; self.proto = proto
        self.clientID = clientID; self.authRequired = authRequired; self.tlsRequired = tlsRequired
        self.tlsVerify = tlsVerify; self.tlsAvailable = tlsAvailable; self.connectURLs = connectURLs
        self.lameDuckMode = lameDuckMode; self.jetStream = jetStream; self.nonce = nonce; self.cluster = cluster
        self.domain = domain; self.clientIP = clientIP
    }

    /// Decodes a server's `INFO`; absent fields are false, 0, empty or nil (`max_payload`: 1 MiB).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        serverID = try c.decodeIfPresent(String.self, forKey: .serverID) ?? ""
        serverName = try c.decodeIfPresent(String.self, forKey: .serverName)
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? ""
        host = try c.decodeIfPresent(String.self, forKey: .host)
        port = try c.decodeIfPresent(Int.self, forKey: .port)
        headers = try c.decodeIfPresent(Bool.self, forKey: .headers) ?? false
        maxPayload = try c.decodeIfPresent(Int.self, forKey: .maxPayload) ?? 1_048_576
        proto = try c.decodeIfPresent(Int.self, forKey: .proto) ?? 0
        clientID = try c.decodeIfPresent(UInt64.self, forKey: .clientID)
        authRequired = try c.decodeIfPresent(Bool.self, forKey: .authRequired) ?? false
        tlsRequired = try c.decodeIfPresent(Bool.self, forKey: .tlsRequired) ?? false
        tlsVerify = try c.decodeIfPresent(Bool.self, forKey: .tlsVerify) ?? false
        tlsAvailable = try c.decodeIfPresent(Bool.self, forKey: .tlsAvailable) ?? false
        connectURLs = try c.decodeIfPresent([String].self, forKey: .connectURLs) ?? []
        lameDuckMode = try c.decodeIfPresent(Bool.self, forKey: .lameDuckMode) ?? false
        jetStream = try c.decodeIfPresent(Bool.self, forKey: .jetStream) ?? false
        nonce = try c.decodeIfPresent(String.self, forKey: .nonce)
        cluster = try c.decodeIfPresent(String.self, forKey: .cluster)
        domain = try c.decodeIfPresent(String.self, forKey: .domain)
        clientIP = try c.decodeIfPresent(String.self, forKey: .clientIP)
    }
}
