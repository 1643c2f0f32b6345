/// The `INFO` a NATS server sends on connect and whenever its cluster view changes.
public struct ServerInfo: Codable, Sendable, Hashable {
    public var serverID: String
    public var serverName: String?
    public var version: String
    public var host: String?
    public var port: Int?
    public var headers: Bool
    public var maxPayload: Int
    public var proto: Int
    public var clientID: UInt64?
    public var authRequired: Bool
    public var tlsRequired: Bool
    public var tlsVerify: Bool
    public var tlsAvailable: Bool
    /// Other servers of the cluster clients may connect to (`host:port`).
    public var connectURLs: [String]
    /// Set when the server entered lame-duck mode and will shut down soon.
    public var lameDuckMode: Bool
    public var jetStream: Bool
    public var nonce: String?
    public var cluster: String?
    public var domain: String?
    public var clientIP: String?

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id", serverName = "server_name", version, host, port, headers
        case maxPayload = "max_payload", proto, clientID = "client_id", authRequired = "auth_required"
        case tlsRequired = "tls_required", tlsVerify = "tls_verify", tlsAvailable = "tls_available"
        case connectURLs = "connect_urls", lameDuckMode = "ldm", jetStream = "jetstream", nonce, cluster, domain
        case clientIP = "client_ip"
    }

    public init(
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
