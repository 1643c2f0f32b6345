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
        let client = try await connectedClient(server)
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

/// Deterministic pseudo-random bytes.
func testBytes(_ count: Int, seed: UInt64 = 42) -> [UInt8] {
    var state = seed &* 6_364_136_223_846_793_005 &+ 1
    var bytes = [UInt8](repeating: 0, count: count)
    for index in bytes.indices {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        bytes[index] = UInt8(truncatingIfNeeded: state >> 33)
    }
    return bytes
}

/// Collects watch events until `count` arrived or `seconds` passed.
func collect(_ watcher: KeyValueWatcher, count: Int, within seconds: Double = 10) async throws -> [KeyValueWatchEvent] {
    try await withDeadline(seconds, "\(count) watch events") {
        var events: [KeyValueWatchEvent] = []
        for try await event in watcher {
            events.append(event)
            if events.count == count { break }
        }
        return events
    }
}
