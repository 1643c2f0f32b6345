import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// A NATS system that requires TLS with client certificates (certificates made at test time
/// with `openssl`): the node and nexctl reach it with the `nats` CLI's flags, a context with
/// TLS fields, or its environment variables, and fail saying why with the wrong CA or no
/// client certificate.
@Suite struct TLSEndToEndTests {
    @Test func nodeAndNexctlWorkOverMutualTLS() async throws {
        let certificates = try TestCertificates()
        certificates.shareWithOtherUsers()  // the node runs as its own user
        let (cert, key, ca) = (certificates.path("client.pem"), certificates.path("client-key.pem"), certificates.path("ca.pem"))
        let tls = NATSTLSOptions(caFile: ca, certificateFile: cert, keyFile: key)
        try await withNATSServer(config: certificates.serverConfig(verifyClients: true)) { server in
            // Global options before the subcommand, as the nats CLI takes them.
            let launch = NodeProcess.Launch(extraArguments: ["--tlscert", cert, "--tlskey", key, "--tlsca", ca],
                                            readinessTLS: tls)
            try await withNode(server: server, launch) { node in
                let nexctl = try Executables.nexctl
                let base = ChildEnvironment.base()
                let byFlags = try await runCommand(nexctl, ["-s", server.url, "--tlscert", cert, "--tlskey", key, "--tlsca", ca,
                                                            "node", "ls", "--json"], environment: base)
                #expect(byFlags.status == 0 && byFlags.stdout.contains(node.nodeID), "\(byFlags.stderr)")

                let byEnvironment = try await runCommand(
                    nexctl, ["node", "ls"],
                    environment: base.merging(["NATS_URL": server.url, "NATS_CERT": cert, "NATS_KEY": key, "NATS_CA": ca,
                                               "NATS_TIMEOUT": "2s"]) { $1 })
                #expect(byEnvironment.status == 0 && byEnvironment.stdout.contains(node.nodeID), "\(byEnvironment.stderr)")

                let home = try TemporaryDirectory(prefix: "nats-context-")
                let contexts = home.appending("nats/context")
                try FileManager.default.createDirectory(atPath: contexts, withIntermediateDirectories: true)
                try #"{"url": "\#(server.url)", "cert": "\#(cert)", "key": "\#(key)", "ca": "\#(ca)"}"#
                    .write(toFile: contexts + "/secure.json", atomically: true, encoding: .utf8)
                let byContext = try await runCommand(
                    nexctl, ["node", "ls", "--context", "secure"], environment: base.merging(["XDG_CONFIG_HOME": home.path]) { $1 })
                #expect(byContext.status == 0 && byContext.stdout.contains(node.nodeID), "\(byContext.stderr)")

                // The wrong CA, and no client certificate: refused, saying why.
                let wrongCA = try await runCommand(
                    nexctl, ["node", "ls", "-s", server.url, "--tlscert", cert, "--tlskey", key,
                             "--tlsca", certificates.path("other-ca.pem")], environment: base)
                #expect(wrongCA.status != 0 && wrongCA.stderr.lowercased().contains("certificate"), "\(wrongCA.stderr)")
                let noClientCertificate = try await runCommand(
                    nexctl, ["node", "ls", "-s", server.url, "--tlsca", ca], environment: base)
                #expect(noClientCertificate.status != 0 && noClientCertificate.stderr.hasPrefix("nexctl: "),
                        "\(noClientCertificate.stderr)")
                let halfPair = try await runCommand(nexctl, ["node", "ls", "-s", server.url, "--tlscert", cert], environment: base)
                #expect(halfPair.status != 0 && halfPair.stderr.contains("needs its key"), "\(halfPair.stderr)")
            }

            // The node's own TLS from its config file (control.tls).
            let config = #"{"control": {"tls": {"cert": "\#(cert)", "key": "\#(key)", "ca": "\#(ca)"}}}"#
            try await withNode(server: server, .init(config: config, readinessTLS: tls)) { node in
                #expect(node.isRunning)
            }
            // Without a client certificate the node does not start, and says why.
            let refused = try await NodeProcess.spawn(url: server.url, .init(extraArguments: ["--tlsca", ca]))
            let status = try await refused.waitForExit(timeout: .seconds(20))
            #expect(status != 0, "\(refused.log)")
        }
    }
}
