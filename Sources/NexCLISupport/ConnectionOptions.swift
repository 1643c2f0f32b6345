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

    @Option(help: "A nats CLI context (~/.config/nats/context/NAME.json).")
    public var context: String?

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
        return settings
    }
}
