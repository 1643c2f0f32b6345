import FoundationEssentials

/// A `nats` CLI context (`~/.config/nats/context/NAME.json`): saved server URLs and credentials.
///
/// The connection fields are used: `url`, `token`, `user`, `password`, `creds`, `nkey` (a seed
/// file), and TLS: `cert` and `key` (a client certificate), `ca` (the authorities to trust),
/// `tls_first` (TLS before the server's INFO).
public struct NATSContext: Sendable, Equatable {
    /// The context's name, as given to ``init(named:directory:)``.
    public var name: String
    /// Comma-separated server URLs (`url`).
    public var url: String?
    /// A token to authenticate with (`token`).
    public var token: String?
    /// A user name, used with ``password`` (`user`).
    public var user: String?
    /// The password of ``user`` (`password`).
    public var password: String?
    /// The path of a `.creds` file holding a user JWT and its seed (`creds`).
    public var creds: String?
    /// The path of an nkey seed file (`nkey`).
    public var nkey: String?
    /// TLS settings from `cert`, `key`, `ca` and `tls_first`; nil when the context has none.
    public var tls: NATSTLSOptions?

    private struct File: Decodable {
        var url: String?
        var token: String?
        var user: String?
        var password: String?
        var creds: String?
        var nkey: String?
        var cert: String?
        var key: String?
        var ca: String?
        var tlsFirst: Bool?

        enum CodingKeys: String, CodingKey {
            case url, token, user, password, creds, nkey, cert, key, ca, tlsFirst = "tls_first"
        }
    }

    /// The folder the `nats` CLI keeps contexts in: `$XDG_CONFIG_HOME/nats/context` or `~/.config/nats/context`.
    public static var directory: String {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (FileManager.default.homeDirectoryForCurrentUser.path + "/.config")
        return base + "/nats/context"
    }

    /// Loads context `name` (a name in ``directory``, or a path to a `.json` file).
    public init(named name: String, directory: String = NATSContext.directory) throws {
        let path = name.contains("/") ? name : "\(directory)/\(name).json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NATSError.invalidCredentials("NATS context '\(name)' not found at \(path)")
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw NATSError.invalidCredentials("NATS context \(path) is not valid JSON: \(error)")
        }
        func value(_ text: String?) -> String? { (text ?? "").isEmpty ? nil : text }
        let cert = value(file.cert).map(Self.expandingTilde), key = value(file.key).map(Self.expandingTilde)
        guard (cert == nil) == (key == nil) else {
            throw NATSError.invalidCredentials("NATS context \(path) names a TLS \(cert == nil ? "key" : "certificate") without its \(cert == nil ? "certificate (cert)" : "key (key)")")
        }
        let ca = value(file.ca).map(Self.expandingTilde)
        if cert != nil || ca != nil || file.tlsFirst == true {
            tls = NATSTLSOptions(caFile: ca, certificateFile: cert, keyFile: key, handshakeFirst: file.tlsFirst ?? false)
        }
        self.name = name
        url = value(file.url)
        token = value(file.token)
        user = value(file.user)
        password = value(file.password)
        creds = value(file.creds).map(Self.expandingTilde)
        nkey = value(file.nkey).map(Self.expandingTilde)
    }

    /// Applies the context to client options: its servers (when set), its credentials and its TLS.
    public func apply(to options: inout NATSClientOptions) throws {
        if let tls { options.tls = tls }
        if let url { options.servers = url.split(separator: ",").map { String($0).trimmingCharacters(in: " ") }.map(String.init) }
        if let creds {
            options.auth = .credentialsFile(path: creds)
        } else if let nkey {
            options.auth = .nkey(seed: try NKeyPair(seedFile: nkey).seed)
        } else if let user {
            options.auth = .userPassword(user: user, password: password ?? "")
        } else if let token {
            options.auth = .token(token)
        }
    }

    static func expandingTilde(_ path: String) -> String {
        path.hasPrefix("~/") ? FileManager.default.homeDirectoryForCurrentUser.path + path.dropFirst() : path
    }
}
