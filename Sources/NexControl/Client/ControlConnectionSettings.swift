import FoundationEssentials
import NATSWire

/// How to reach the control NATS system: URLs, one kind of credential and TLS, as the `nats`
/// CLI takes them (`-s`, `--creds`, `--nkey`, `--user`/`--password`, `--token`, `--tlscert`,
/// `--tlskey`, `--tlsca`, `--tlsfirst`, `--context`), with the same environment variables
/// (`NATS_URL`, `NATS_USER`, `NATS_PASSWORD`, `NATS_CREDS`, `NATS_NKEY`, `NATS_CERT`,
/// `NATS_KEY`, `NATS_CA`, `NATS_CONTEXT`). Shared by `nex-node` and `nexctl`.
///
/// What wins: explicit settings, then the environment, then the context.
public struct ControlConnectionSettings: Sendable, Equatable {
    /// NATS server URLs (`-s`); each may hold several, comma-separated. Empty: the context's,
    /// else `$NATS_URL`, else `nats://127.0.0.1:4222`.
    public var servers: [String] = []
    /// A `.creds` file (user JWT and seed), `--creds`.
    public var credsFile: String?
    /// A file holding an nkey seed.
    public var nkeySeedFile: String?
    /// A user name (`--user`), with ``password``.
    public var user: String?
    /// The password of ``user`` (`--password`); nil sends an empty one.
    public var password: String?
    /// An authentication token (`--token`).
    public var token: String?
    /// A `nats` CLI context name (or path); explicit settings override it.
    public var context: String?
    /// A PEM client certificate (`--tlscert`), with ``tlsKey``.
    public var tlsCertificate: String?
    /// The PEM key of ``tlsCertificate`` (`--tlskey`).
    public var tlsKey: String?
    /// PEM certificate authorities to trust instead of the system's (`--tlsca`).
    public var tlsCA: String?
    /// TLS before the server's INFO (`--tlsfirst`, the server's `handshake_first`).
    public var tlsFirst: Bool?

    /// No servers and no credentials: ``clientOptions(environment:)`` then falls back to
    /// `$NATS_URL` and connects without credentials.
    public init() {}

    /// Fills unset fields from `other` (e.g. flags over a config file).
    public func overriding(_ other: ControlConnectionSettings) -> ControlConnectionSettings {
        var merged = self
        if !other.servers.isEmpty { merged.servers = other.servers }
        merged.credsFile = other.credsFile ?? credsFile
        merged.nkeySeedFile = other.nkeySeedFile ?? nkeySeedFile
        merged.user = other.user ?? user
        merged.password = other.password ?? password
        merged.token = other.token ?? token
        merged.context = other.context ?? context
        merged.tlsCertificate = other.tlsCertificate ?? tlsCertificate
        merged.tlsKey = other.tlsKey ?? tlsKey
        merged.tlsCA = other.tlsCA ?? tlsCA
        merged.tlsFirst = other.tlsFirst ?? tlsFirst
        return merged
    }

    /// The settings the `nats` CLI's environment variables give (`NATS_URL`, `NATS_USER`,
    /// `NATS_PASSWORD`, `NATS_CREDS`, `NATS_NKEY`, `NATS_CERT`, `NATS_KEY`, `NATS_CA`,
    /// `NATS_CONTEXT`); empty values count as unset.
    public static func fromEnvironment(_ environment: [String: String]) -> ControlConnectionSettings {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        var settings = ControlConnectionSettings()
        settings.servers = value("NATS_URL").map { [$0] } ?? []
        settings.user = value("NATS_USER")
        settings.password = value("NATS_PASSWORD")
        settings.credsFile = value("NATS_CREDS")
        settings.nkeySeedFile = value("NATS_NKEY")
        settings.tlsCertificate = value("NATS_CERT")
        settings.tlsKey = value("NATS_KEY")
        settings.tlsCA = value("NATS_CA")
        settings.context = value("NATS_CONTEXT")
        return settings
    }

    /// Client options: the context first, then the environment, then these settings; servers
    /// default to `nats://127.0.0.1:4222`.
    ///
    /// - Throws: when the context cannot be read, a TLS certificate comes without its key (or the
    ///   other way round), or an nkey seed file does not load.
    public func clientOptions(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> NATSClientOptions {
        let settings = Self.fromEnvironment(environment).overriding(self)
        var options = NATSClientOptions()
        if let context = settings.context {
            try NATSContext(named: context).apply(to: &options)
        }
        try settings.apply(to: &options)
        return options
    }

    /// Applies servers, credentials and TLS that are set over what `options` holds.
    private func apply(to options: inout NATSClientOptions) throws {
        if !servers.isEmpty {
            options.servers = servers.flatMap { $0.split(separator: ",").map { String($0.filter { $0 != " " }) } }
        }
        guard (tlsCertificate == nil) == (tlsKey == nil) else {
            throw NATSError.invalidCredentials(
                tlsCertificate == nil ? "a TLS key (--tlskey, NATS_KEY) needs its certificate (--tlscert, NATS_CERT)"
                                      : "a TLS certificate (--tlscert, NATS_CERT) needs its key (--tlskey, NATS_KEY)")
        }
        if tlsCertificate != nil || tlsCA != nil || tlsFirst == true {
            var tls = options.tls ?? NATSTLSOptions()
            if let tlsCertificate, let tlsKey {
                tls.certificateFile = tlsCertificate
                tls.keyFile = tlsKey
            }
            if let tlsCA { tls.caFile = tlsCA }
            if let tlsFirst { tls.handshakeFirst = tlsFirst }
            options.tls = tls
        }
        if let credsFile {
            options.auth = .credentialsFile(path: credsFile)
        } else if let nkeySeedFile {
            options.auth = .nkey(seed: try NKeyPair(seedFile: nkeySeedFile).seed)
        } else if let user {
            options.auth = .userPassword(user: user, password: password ?? "")
        } else if let token {
            options.auth = .token(token)
        }
    }
}
