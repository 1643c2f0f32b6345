import ArgumentParser
import NexControl

/// The control-connection options of `nex-node` and `nexctl`, named as the `nats` CLI names them.
public struct ConnectionOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "NATS server URL(s), comma-separated (default: $NATS_URL, then nats://127.0.0.1:4222).")
    public var server: String?

    @Option(help: "Credentials (.creds) file.")
    public var creds: String?

    @Option(help: "File holding an nkey seed.")
    public var nkey: String?

    @Option(help: "User name.")
    public var user: String?

    @Option(help: "Password.")
    public var password: String?

    @Option(help: "Token.")
    public var token: String?

    @Option(help: "A nats CLI context (~/.config/nats/context/NAME.json; default: $NATS_CONTEXT).")
    public var context: String?

    @Option(help: "TLS client certificate, PEM (default: $NATS_CERT).")
    public var tlscert: String?

    @Option(help: "TLS client key, PEM (default: $NATS_KEY).")
    public var tlskey: String?

    @Option(help: "TLS certificate authorities to trust, PEM (default: $NATS_CA; else the system's).")
    public var tlsca: String?

    @Flag(help: "TLS before the server's INFO (the server's handshake_first).")
    public var tlsfirst = false

    /// Options of this group that take no value.
    static let flagNames: Set<String> = ["--tlsfirst"]
    /// Options of this group that take a value.
    static let valueNames: Set<String> = ["-s", "--server", "--creds", "--nkey", "--user", "--password", "--token",
                                          "--context", "--tlscert", "--tlskey", "--tlsca"]

    /// Lets connection options stand before the subcommand, as with the `nats` CLI:
    /// `[-s, URL, --tlsfirst, node, ls, --json]` → `[node, ls, --json, -s, URL, --tlsfirst]`. The
    /// options (of this group, and `alsoTakingValues`) before the first other word are moved to
    /// the end (before a `--`, if any); anything else is left for the parser to judge.
    public static func movingLeadingOptions(_ arguments: [String], alsoTakingValues extra: Set<String> = [])
        -> [String]
    {
        let values = valueNames.union(extra)
        var leading: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            if flagNames.contains(argument) {
                leading.append(argument)
                index += 1
            } else if values.contains(name) {
                let count = !argument.contains("=") && index + 1 < arguments.count ? 2 : 1
                leading.append(contentsOf: arguments[index..<(index + count)])
                index += count
            } else {
                break
            }
        }
        guard !leading.isEmpty, index < arguments.count else { return arguments }
        var rest = Array(arguments[index...])
        rest.insert(contentsOf: leading, at: rest.firstIndex(of: "--") ?? rest.count)
        return rest
    }

    public init() {}

    /// The options as connection settings (unset ones stay nil).
    public var settings: ControlConnectionSettings {
        var settings = ControlConnectionSettings()
        settings.servers = server.map { [$0] } ?? []
        settings.credsFile = creds
        settings.nkeySeedFile = nkey
        settings.user = user
        settings.password = password
        settings.token = token
        settings.context = context
        settings.tlsCertificate = tlscert
        settings.tlsKey = tlskey
        settings.tlsCA = tlsca
        settings.tlsFirst = tlsfirst ? true : nil
        return settings
    }
}

extension AsyncParsableCommand {
    /// The executable's entry point with connection options allowed before the subcommand:
    /// parses the command line after ``ConnectionOptions/movingLeadingOptions(_:alsoTakingValues:)``
    /// and runs the command.
    public static func mainMovingConnectionOptions(alsoTakingValues extra: Set<String>) async {
        let arguments = ConnectionOptions.movingLeadingOptions(Array(CommandLine.arguments.dropFirst()),
                                                               alsoTakingValues: extra)
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
