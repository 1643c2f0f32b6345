import ArgumentParser
import Foundation
import NATSWire
import NexControl

/// `nexctl keys gen issuer|xkey [--out FILE]`.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make keys for signing and sealing workloads.",
                                                    subcommands: [Generate.self])

    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case issuer, xkey
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gen",
            abstract: "Generate an issuer (account nkey) or an xkey (curve key) seed.",
            discussion: """
                The seed goes to --out (a new file, mode 0600; an existing file is never overwritten) \
                or to stdout; the public key is printed on stderr.
                """)
        @Argument(help: "issuer (signs workload JWTs) or xkey (seals environments).") var kind: Kind
        @Option(help: "Write the seed to this new file.") var out: String?

        func run() async throws {
            try await Nexctl.perform {
                let seed: String, publicKey: String
                switch kind {
                case .issuer:
                    let pair = try NexKeyStore.generateIssuer()
                    (seed, publicKey) = (pair.seed, pair.publicKey)
                case .xkey:
                    let pair = try NexKeyStore.generateXKey()
                    (seed, publicKey) = (pair.seed, pair.publicKey)
                }
                if let out {
                    try NexKeyStore.writeSeed(seed, to: out)
                    warn("wrote \(kind.rawValue) seed to \(out)")
                } else {
                    print(seed)
                }
                warn("public key: \(publicKey)")
            }
        }
    }
}
