/// The `CONNECT` options a client sends after the server's `INFO`.
public struct ConnectInfo: Codable, Sendable, Hashable {
    public var verbose: Bool = false
    public var pedantic: Bool = false
    public var tlsRequired: Bool = false
    public var name: String?
    public var lang: String = "swift"
    public var version: String = NATSWireVersion.string
    public var `protocol`: Int = 1
    public var echo: Bool = true
    public var headers: Bool = true
    public var noResponders: Bool = true
    public var authToken: String?
    public var user: String?
    public var pass: String?
    public var nkey: String?
    public var jwt: String?
    public var sig: String?

    enum CodingKeys: String, CodingKey {
        case verbose, pedantic, tlsRequired = "tls_required", name, lang, version, `protocol`, echo, headers
        case noResponders = "no_responders", authToken = "auth_token", user, pass, nkey, jwt, sig
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        verbose = try c.decodeIfPresent(Bool.self, forKey: .verbose) ?? false
        pedantic = try c.decodeIfPresent(Bool.self, forKey: .pedantic) ?? false
        tlsRequired = try c.decodeIfPresent(Bool.self, forKey: .tlsRequired) ?? false
        name = try c.decodeIfPresent(String.self, forKey: .name)
        lang = try c.decodeIfPresent(String.self, forKey: .lang) ?? ""
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? ""
        `protocol` = try c.decodeIfPresent(Int.self, forKey: .protocol) ?? 0
        echo = try c.decodeIfPresent(Bool.self, forKey: .echo) ?? true
        headers = try c.decodeIfPresent(Bool.self, forKey: .headers) ?? false
        noResponders = try c.decodeIfPresent(Bool.self, forKey: .noResponders) ?? false
        authToken = try c.decodeIfPresent(String.self, forKey: .authToken)
        user = try c.decodeIfPresent(String.self, forKey: .user)
        pass = try c.decodeIfPresent(String.self, forKey: .pass)
        nkey = try c.decodeIfPresent(String.self, forKey: .nkey)
        jwt = try c.decodeIfPresent(String.self, forKey: .jwt)
        sig = try c.decodeIfPresent(String.self, forKey: .sig)
    }
}

/// The version this library reports in `CONNECT`.
public enum NATSWireVersion {
    public static let string = "0.1.0"
}
