import Foundation
import NATSTestSupport
import NIOCore
@testable import NATSWire

/// A JetStream server, a client on it, and a context; closed by `close()`.
struct JetStreamFixture {
    let server: NATSServer
    let client: NATSClient
    let js: JetStreamContext

    static func start(config: String? = nil, domain: String? = nil) async throws -> JetStreamFixture {
        let server = try await NATSServer.start(config: config)
        let client = try await server.connectedClient()
        let js = try client.jetStream(domain: domain)
        return JetStreamFixture(server: server, client: client, js: js)
    }

    func close() async {
        await client.close()
    }
}

/// Runs `body` with a fixture and closes the client afterwards, also when `body` throws.
func withJetStream<T>(
    config: String? = nil, domain: String? = nil, _ body: (JetStreamFixture) async throws -> T
) async throws -> T {
    let fixture = try await JetStreamFixture.start(config: config, domain: domain)
    do {
        let result = try await body(fixture)
        await fixture.close()
        return result
    } catch {
        await fixture.close()
        throw error
    }
}

/// Whether the server's version is at least `major.minor`.
func serverVersion(_ server: NATSServer, atLeast major: Int, _ minor: Int) -> Bool {
    let parts = (server.version ?? "0.0").split(separator: ".").compactMap { Int($0.prefix { $0.isNumber }) }
    guard parts.count >= 2 else { return false }
    return (parts[0], parts[1]) >= (major, minor)
}

/// Collects watch events until `count` arrived or `seconds` passed.
func collect(_ watcher: KeyValueWatcher, count: Int, within seconds: Double = 10) async throws -> [KeyValueWatchEvent] {
    try await withTimeLimit(.seconds(seconds), "\(count) watch events") {
        var events: [KeyValueWatchEvent] = []
        for try await event in watcher {
            events.append(event)
            if events.count == count { break }
        }
        return events
    }
}
