import FoundationEssentials

/// A `nats` CLI context (`~/.config/nats/context/NAME.json`): saved server URLs and credentials.
///
/// Only the connection fields are used: `url`, `token`, `user`, `password`, `creds`, `nkey`
/// (a seed file). TLS fields are refused until TLS lands, rather than ignored.
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
        if [file.cert, file.key, file.ca].contains(where: { !($0 ?? "").isEmpty }) {
            throw NATSError.unsupported("NATS context \(path) uses TLS settings, which this build does not offer yet")
        }
        func value(_ text: String?) -> String? { (text ?? "").isEmpty ? nil : text }
        self.name = name
        url = value(file.url)
        token = value(file.token)
        user = value(file.user)
        password = value(file.password)
        creds = value(file.creds).map(Self.expandingTilde)
        nkey = value(file.nkey).map(Self.expandingTilde)
    }

    /// Applies the context to client options: its servers (when set) and its credentials.
    public func apply(to options: inout NATSClientOptions) throws {
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
