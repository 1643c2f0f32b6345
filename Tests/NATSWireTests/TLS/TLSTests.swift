import Foundation
import NATSTestSupport
import NIOCore
import Testing
@testable import NATSWire

/// Certificates made at run time with the `openssl` command: a CA, a server certificate for
/// 127.0.0.1/localhost, an expired one, one for another host name, and a client certificate.
final class TestCertificates: Sendable {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "natswire-tls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
                    "-days", "30", "-subj", "/CN=NATSWire Test CA")
        try openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "other-ca-key.pem", "-out", "other-ca.pem",
                    "-days", "30", "-subj", "/CN=Some Other CA")
        try issue("server", commonName: "localhost", san: "IP:127.0.0.1,DNS:localhost", days: "30")
        try issue("expired", commonName: "localhost", san: "IP:127.0.0.1,DNS:localhost", days: "-1")
        try issue("wronghost", commonName: "elsewhere.example", san: "DNS:elsewhere.example", days: "30")
        try issue("client", commonName: "natswire-client", san: "DNS:natswire-client", days: "30")
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// nats-server `tls {}` block for one of the issued server certificates.
    func serverConfig(cert: String = "server", verifyClients: Bool = false, handshakeFirst: Bool = false) -> String {
        """
        tls {
          cert_file: "\(path("\(cert).pem"))"
          key_file: "\(path("\(cert)-key.pem"))"
          ca_file: "\(path("ca.pem"))"
          verify: \(verifyClients)
          \(handshakeFirst ? "handshake_first: true" : "")
          timeout: 2
        }
        """
    }

    private func issue(_ name: String, commonName: String, san: String, days: String) throws {
        try openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "\(name)-key.pem", "-out", "\(name).csr",
                    "-subj", "/CN=\(commonName)")
        try "subjectAltName=\(san)\n".write(toFile: path("\(name).ext"), atomically: true, encoding: .utf8)
        try openssl("x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                    "-out", "\(name).pem", "-days", days, "-extfile", "\(name).ext")
    }

    private func openssl(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestTimeout(what: "openssl \(arguments.joined(separator: " ")) (exit \(process.terminationStatus))")
        }
    }
}

@Suite struct TLSTests {
    func tlsClient(_ server: NATSServer, url: String? = nil, _ tls: NATSTLSOptions?) throws -> NATSClient {
        var options = NATSClientOptions(servers: [url ?? server.url])
        options.tls = tls
        options.connectTimeout = .seconds(3)
        options.allowReconnect = false
        return try NATSClient(options: options)
    }

    func roundTrip(_ client: NATSClient) async throws {
        let sub = try await client.subscribe(to: "secure")
        try await client.publish("over tls", to: "secure")
        #expect(try await collect(sub, count: 1).first?.string == "over tls")
    }

    @Test func goodCAConnectsAndMessagesFlow() async throws {
        let certificates = try TestCertificates()
        try await withNATSServer(config: certificates.serverConfig()) { server in
            let client = try tlsClient(server, NATSTLSOptions(caFile: certificates.path("ca.pem")))
            let events = EventRecorder(client)
            try await client.connect()
            try await withTeardown({ await client.close() }) {
                #expect(client.serverInfo?.tlsRequired == true)
                try await roundTrip(client)
                if !client.isConnected {
                    Issue.record("the TLS connection dropped after the round trip; events: \(events.all); server log: \(server.logContents().suffix(1500))")
                }
                // Large payloads cross many TLS records.
                let big = [UInt8](repeating: 7, count: 900_000)
                let sub = try await client.subscribe(to: "big")
                try await client.publish(big, to: "big")
                #expect(Array(buffer: try await collect(sub, count: 1)[0].payload) == big)
            }
        }
    }

    @Test func tlsURLAndServerRequirementBothUseTLS() async throws {
        let certificates = try TestCertificates()
        try await withNATSServer(config: certificates.serverConfig()) { server in
            // The server requires TLS: options without TLS settings still upgrade (system CA fails,
            // naming the verification problem rather than talking in clear).
            let plain = try tlsClient(server, nil)
            await #expect {
                try await plain.connect()
            } throws: { error in
                guard let error = error as? NATSError, error.code == .tlsFailed, let reason = error.reason else { return false }
                return reason.contains("unable to get local issuer certificate")
            }
            let viaURL = try tlsClient(server, url: "tls://127.0.0.1:\(server.port)", NATSTLSOptions(caFile: certificates.path("ca.pem")))
            try await viaURL.connect()
            try await roundTrip(viaURL)
            await viaURL.close()
        }
    }

    @Test func wrongCAIsRefusedSayingWhy() async throws {
        let certificates = try TestCertificates()
        try await withNATSServer(config: certificates.serverConfig()) { server in
            let client = try tlsClient(server, NATSTLSOptions(caFile: certificates.path("other-ca.pem")))
            await #expect {
                try await client.connect()
            } throws: { error in
                guard let error = error as? NATSError, error.code == .tlsFailed, let reason = error.reason else { return false }
                return reason.contains("certificate verification failed") && reason.contains("local issuer")
            }
        }
    }

    @Test func expiredCertificateIsRefusedSayingWhy() async throws {
        let certificates = try TestCertificates()
        try await withNATSServer(config: certificates.serverConfig(cert: "expired")) { server in
            let client = try tlsClient(server, NATSTLSOptions(caFile: certificates.path("ca.pem")))
            await #expect {
                try await client.connect()
            } throws: { error in
                guard let error = error as? NATSError, error.code == .tlsFailed, let reason = error.reason else { return false }
                return reason.contains("expired")
            }
        }
    }

    @Test func wrongHostNameIsRefusedSayingWhy() async throws {
        let certificates = try TestCertificates()
        try await withNATSServer(config: certificates.serverConfig(cert: "wronghost")) { server in
            let client = try tlsClient(server, NATSTLSOptions(caFile: certificates.path("ca.pem")))
            await #expect {
                try await client.connect()
            } throws: { error in
                guard let error = error as? NATSError, error.code == .tlsFailed, let reason = error.reason else { return false }
                return reason.contains("mismatch")
            }
            // The same certificate is fine when the expected name is the one it carries.
            var named = NATSTLSOptions(caFile: certificates.path("ca.pem"))
            named.serverName = "elsewhere.example"
            let client2 = try tlsClient(server, named)
            try await client2.connect()
            await client2.close()
        }
    }

    @Test func clientCertificateRequiredByServer() async throws {
        let certificates = try TestCertificates()
        try await withNATSServer(config: certificates.serverConfig(verifyClients: true)) { server in
            let without = try tlsClient(server, NATSTLSOptions(caFile: certificates.path("ca.pem")))
            await #expect(throws: NATSError.self) { try await without.connect() }
            let with = try tlsClient(server, NATSTLSOptions(
                caFile: certificates.path("ca.pem"), certificateFile: certificates.path("client.pem"),
                keyFile: certificates.path("client-key.pem")))
            try await with.connect()
            try await roundTrip(with)
            await with.close()
        }
    }

    @Test func badCertificateFilesFailAtCreation() throws {
        var options = NATSClientOptions(servers: ["tls://127.0.0.1:4222"])
        options.tls = NATSTLSOptions(caFile: "/nonexistent/ca.pem")
        #expect { try NATSClient(options: options) } throws: { error in
            guard let error = error as? NATSError, error.code == .tlsFailed, let reason = error.reason else { return false }
            return reason.contains("/nonexistent/ca.pem")
        }
        options.tls = NATSTLSOptions(certificateFile: "/tmp/only-cert.pem")
        #expect(throws: NATSError.self) { try NATSClient(options: options) }
    }

    @Test func tlsRequestedButNotOfferedNeverFallsBackToClearText() async throws {
        try await withNATSServer { server in
            let client = try tlsClient(server, url: "tls://127.0.0.1:\(server.port)", nil)
            await #expect {
                try await client.connect()
            } throws: { error in
                guard let error = error as? NATSError, error.code == .tlsFailed, let reason = error.reason else { return false }
                return reason.contains("does not offer")
            }
        }
    }

    @Test func reconnectWorksOverTLS() async throws {
        let certificates = try TestCertificates()
        try await withNATSServer(config: certificates.serverConfig()) { server in
            var options = NATSClientOptions(servers: [server.url])
            options.tls = NATSTLSOptions(caFile: certificates.path("ca.pem"))
            options.reconnectWait = .milliseconds(50)
            options.maxReconnectWait = .milliseconds(200)
            let client = try NATSClient(options: options)
            try await client.connect()
            try await withTeardown({ await client.close() }) {
                let events = EventRecorder(client)
                let sub = try await client.subscribe(to: "after")
                server.stop()
                // Publish only once the client knows the connection is gone: before that, a publish
                // goes to the dying socket (at most once, as with every NATS client).
                try await events.waitFor("disconnected", timeout: .seconds(15)) { event in
                    if case .disconnected = event { return true }
                    return false
                }
                try await client.publish("buffered", to: "after")
                try await server.restart()
                try await events.waitFor("reconnected", timeout: .seconds(15)) { event in
                    if case .reconnected = event { return true }
                    return false
                }
                try await client.publish("live", to: "after")
                let messages = try await collect(sub, count: 2)
                #expect(messages.map(\.string) == ["buffered", "live"])
            }
        }
    }
}
