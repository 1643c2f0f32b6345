import NATSTestSupport
import NATSWire
import NIOCore
import Testing

/// Permission violations are reported as events and leave the connection up.
@Suite struct PermissionsClientTests {
    static let config = """
        authorization {
          users: [
            {
              user: limited
              password: "pw"
              permissions: {
                publish: { allow: ["allowed.>"] }
                subscribe: { allow: ["allowed.>"] }
              }
            }
          ]
        }
        """

    func limitedClient(_ server: NATSServer) async throws -> NATSClient {
        try await server.connectedClient { $0.auth = .userPassword(user: "limited", password: "pw") }
    }

    static func permissionViolation(_ event: NATSEvent) -> String? {
        if case .error(let error) = event, error.code == .permissionViolation { return error.reason }
        return nil
    }

    @Test func publishToADeniedSubjectIsReportedAndTheConnectionStaysUp() async throws {
        try await withNATSServer(config: Self.config, jetStream: false) { server in
            let client = try await limitedClient(server)
            try await withTeardown({ await client.close() }) {
                let events = EventRecorder(client)
                let sub = try await client.subscribe(to: "allowed.>")
                try await client.flush()

                try await client.publish("nope", to: "denied.x")
                try await client.flush()
                let event = try await events.waitFor("permission violation") { Self.permissionViolation($0) != nil }
                let message = try #require(Self.permissionViolation(event))
                #expect(message.localizedCaseInsensitiveContains("publish"), "message: \(message)")
                #expect(message.contains("denied.x"), "message: \(message)")
                #expect(NATSError.permissionViolation(message).description.hasPrefix("permission denied: "))

                // Still connected, nothing closed or reconnected, and allowed traffic flows.
                #expect(client.isConnected)
                try await client.publish("yes", to: "allowed.y")
                let received = try await collect(sub, count: 1)
                #expect(received.map(\.subject) == ["allowed.y"])
                #expect(received.map(\.string) == ["yes"])
                #expect(!events.all.contains { event in
                    switch event {
                    case .disconnected, .reconnected, .closed: true
                    default: false
                    }
                }, "events: \(events.all)")
            }
        }
    }

    @Test func subscribingToADeniedSubjectIsReportedAndTheConnectionStaysUp() async throws {
        try await withNATSServer(config: Self.config, jetStream: false) { server in
            let client = try await limitedClient(server)
            try await withTeardown({ await client.close() }) {
                let events = EventRecorder(client)

                _ = try await client.subscribe(to: "denied.>")
                try await client.flush()
                let event = try await events.waitFor("permission violation") { Self.permissionViolation($0) != nil }
                let message = try #require(Self.permissionViolation(event))
                #expect(message.localizedCaseInsensitiveContains("subscription"), "message: \(message)")
                #expect(message.contains("denied.>"), "message: \(message)")

                #expect(client.isConnected)
                let sub = try await client.subscribe(to: "allowed.sub")
                try await client.publish("fine", to: "allowed.sub")
                #expect(try await collect(sub, count: 1).map(\.string) == ["fine"])
            }
        }
    }

    @Test func manyViolationsInARowDoNotBreakTheConnection() async throws {
        try await withNATSServer(config: Self.config, jetStream: false) { server in
            let client = try await limitedClient(server)
            try await withTeardown({ await client.close() }) {
                let events = EventRecorder(client)
                let sub = try await client.subscribe(to: "allowed.mixed")
                try await client.flush()

                for index in 0..<20 {
                    try await client.publish("bad \(index)", to: "denied.\(index)")
                    try await client.publish("good \(index)", to: "allowed.mixed")
                }
                let good = try await collect(sub, count: 20)
                #expect(good.map(\.string) == (0..<20).map { "good \($0)" })
                try await client.flush()
                try await waitFor(timeout: .seconds(3), "20 violations reported") {
                    events.all.compactMap(Self.permissionViolation).count == 20
                }
                #expect(client.isConnected)
            }
        }
    }
}
