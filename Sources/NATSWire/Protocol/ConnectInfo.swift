/// The `CONNECT` options a client sends after the server's `INFO`.
package struct ConnectInfo: Codable, Sendable, Hashable {
    /// `verbose`: ask the server to acknowledge every operation with `+OK`.
    package var verbose: Bool = false
    /// `pedantic`: ask the server for strict checks of subjects and operations.
    package var pedantic: Bool = false
    /// `tls_required`: the client needs TLS.
    package var tlsRequired: Bool = false
    /// `name`: the client's name, shown in the server's monitoring.
    package var name: String?
    /// `lang`: the client library's language.
    package var lang: String = "swift"
    /// `version`: the client library's version.
    package var version: String = NATSWireVersion.string
    /// `protocol`: 1 to receive the cluster's servers in `INFO` updates.
    package var `protocol`: Int = 1
    /// `echo`: whether the server delivers the client's own messages to its subscriptions.
    package var echo: Bool = true
    /// `headers`: the client accepts `HMSG` (messages with headers).
    package var headers: Bool = true
    /// `no_responders`: ask for a 503 status message when a request has no subscriber.
    package var noResponders: Bool = true
    /// `auth_token`: a token for token authentication.
    package var authToken: String?
    /// `user`: the user name for user/password authentication.
    package var user: String?
    /// `pass`: the password for user/password authentication.
    package var pass: String?
    /// `nkey`: the client's package user nkey, for nkey authentication.
    package var nkey: String?
    /// `jwt`: the user JWT, for decentralised (JWT) authentication.
    package var jwt: String?
    /// `sig`: the server's `nonce` signed with the user's nkey, base64url.
    package var sig: String?

    enum CodingKeys: String, CodingKey {
        case verbose, pedantic, tlsRequired = "tls_required", name, lang, version, `protocol`, echo, headers
        case noResponders = "no_responders", authToken = "auth_token", user, pass, nkey, jwt, sig
    }

    /// The defaults this library sends: not verbose, echo on, headers and no-responders on, no credentials.
    package init() {}

    /// Decodes a client's `CONNECT` (the agent bus does); absent fields take the protocol's defaults
    /// (`echo` true, the others false, 0 or empty).
    package init(from decoder: any Decoder) throws {
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
package enum NATSWireVersion {
    /// `0.1.0`.
    package static let string = "0.1.0"
}
