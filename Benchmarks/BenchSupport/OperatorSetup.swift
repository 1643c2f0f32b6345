import Foundation
import NATSTestSupport
import NATSWire

/// The files of an operator-mode nats-server for the benchmarks that run functions with
/// `direct_triggers` (`--operator-setup DIR`): `server.conf`, a user's `user.creds`, the
/// account's signing key seed `signing.nk` and its public key `account.pub`.
public enum OperatorSetup {
    public static func write(to directory: String) throws {
        let setup = try NATSOperator()
        func write(_ text: String, _ name: String) throws {
            try Data(text.utf8).write(to: URL(fileURLWithPath: directory + "/" + name))
        }
        try write(setup.serverConfig, "server.conf")
        try write(try setup.userCreds(name: "bench"), "user.creds")
        try write(setup.signingKey.seed, "signing.nk")
        try write(setup.accountKey.publicKey, "account.pub")
    }

    /// Client options for `url`, with `BENCH_CREDS` (a .creds file) when set.
    public static func clientOptions(_ url: String, name: String) -> NATSClientOptions {
        var options = NATSClientOptions(servers: [url])
        options.name = name
        if let creds = ProcessInfo.processInfo.environment["BENCH_CREDS"] { options.auth = .credentialsFile(path: creds) }
        return options
    }
}
