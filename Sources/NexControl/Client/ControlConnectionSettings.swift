import FoundationEssentials
import NATSWire

/// How to reach the control NATS system: URLs and one kind of credential, as the `nats` CLI
/// takes them (`-s`, `--creds`, `--nkey`, `--user`/`--password`, `--token`, `--context`).
/// Shared by `nex-node` and `nexctl`.
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
        return merged
    }

    /// Client options: the context first, then explicit settings; servers default to
    /// `$NATS_URL`, then `nats://127.0.0.1:4222`.
    public func clientOptions(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> NATSClientOptions {
        var options = NATSClientOptions()
        var contextGaveServers = false
        if let context {
            let loaded = try NATSContext(named: context)
            try loaded.apply(to: &options)
            contextGaveServers = loaded.url != nil
        }
        if !servers.isEmpty {
            options.servers = servers.flatMap { $0.split(separator: ",").map(String.init) }
        } else if !contextGaveServers, let url = environment["NATS_URL"], !url.isEmpty {
            options.servers = url.split(separator: ",").map(String.init)
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
        return options
    }
}
