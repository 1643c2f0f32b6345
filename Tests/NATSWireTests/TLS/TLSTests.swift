import Foundation
import NATSTestSupport
import NIOCore
import Testing
@testable import NATSWire

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
