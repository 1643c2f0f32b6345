import FoundationEssentials
import NATSWire

/// A NATS operator with one account, as `nsc` would issue them, for servers in operator mode
/// (`resolver: MEMORY`, the account preloaded). The account has a signing key besides its
/// own, so users can be issued either way.
public struct NATSOperator: Sendable {
    public let operatorKey: NKeyPair
    public let accountKey: NKeyPair
    /// A signing key of the account (listed in its JWT's `signing_keys`).
    public let signingKey: NKeyPair
    public let operatorJWT: String
    public let accountJWT: String

    public init() throws {
        operatorKey = try NKeyPair.generate(.operator)
        accountKey = try NKeyPair.generate(.account)
        signingKey = try NKeyPair.generate(.account)
        operatorJWT = try NATSJWT.encode(
            NATSJWTClaims(subject: operatorKey.publicKey, name: "test-operator", nats: ["type": "operator", "version": 2]),
            signer: operatorKey).token
        accountJWT = try NATSJWT.encode(
            NATSJWTClaims(subject: accountKey.publicKey, name: "test-account", nats: [
                "type": "account", "version": 2,
                "signing_keys": [.string(signingKey.publicKey)],
                "limits": [
                    "subs": -1, "conn": -1, "leaf": -1, "imports": -1, "exports": -1,
                    "data": -1, "payload": -1, "wildcards": true,
                    "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
                ],
            ]),
            signer: operatorKey).token
    }

    /// The server's config lines for operator mode (add `listen`, `jetstream` as needed).
    public var serverConfig: String {
        """
        operator: "\(operatorJWT)"
        resolver: MEMORY
        resolver_preload: {
          \(accountKey.publicKey): "\(accountJWT)"
        }
        """
    }

    /// A user JWT for `user` signed by the account's key, with `permissions` (`pub`, `sub`,
    /// `resp`) as the JWT's nats claims; none: everything allowed.
    public func userJWT(for user: NKeyPair, name: String = "test-user", permissions: [String: JSONValue] = [:],
                        expires: Date? = nil) throws -> String {
        var nats: [String: JSONValue] = ["type": "user", "version": 2, "pub": [:], "sub": [:], "subs": -1, "data": -1,
                                         "payload": -1]
        for (key, value) in permissions { nats[key] = value }
        return try NATSJWT.encode(NATSJWTClaims(subject: user.publicKey, name: name, expires: expires, nats: nats),
                                  signer: accountKey).token
    }

    /// A decorated `.creds` file as `nsc generate creds` writes it.
    public static func creds(jwt: String, seed: String) -> String {
        """
        -----BEGIN NATS USER JWT-----
        \(jwt)
        ------END NATS USER JWT------

        ************************* IMPORTANT *************************
        NKEY Seed printed below can be used to sign and prove identity.
        NKEYs are sensitive and should be treated as secrets.

        -----BEGIN USER NKEY SEED-----
        \(seed)
        ------END USER NKEY SEED------

        *************************************************************

        """
    }

    /// `.creds` text for a new user of the account with every permission.
    public func userCreds(name: String = "test-user") throws -> String {
        let user = try NKeyPair.generate(.user)
        return Self.creds(jwt: try userJWT(for: user, name: name), seed: user.seed)
    }
}
