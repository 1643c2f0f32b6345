import Foundation
import NATSTestSupport
import NATSWire
import NIOCore
import Synchronization
import Testing
@testable import NexNodeKit

/// What a function's agent can do with the JWT the node signs for it, tried against a real
/// operator-mode nats-server: serve its subjects in its queue group and reply once to each
/// message, and nothing else. Each attack is performed and its outcome checked from the other
/// side (a full user of the same account sees nothing arrive).
@Suite struct TriggerCredentialsTests {
    static let subject = "fn.echo"
    static let queue = "nex:tenant:echo"

    struct Setup {
        let setup: NATSOperator
        let credentials: TriggerCredentials
        let agentKey: NKeyPair

        init() throws {
            setup = try NATSOperator()
            credentials = try TriggerCredentials(signer: setup.signingKey, account: setup.accountKey.publicKey,
                                                 lifetime: .seconds(60), replyWindow: .seconds(5))
            agentKey = try NKeyPair.generate(.user)
        }

        func agentJWT(now: Date = Date()) throws -> String {
            try credentials.jwt(for: agentKey.publicKey, subjects: [subject], queue: queue, name: "echo", now: now).token
        }
    }

    /// A client that records the server's errors (permission violations arrive as `-ERR`).
    final class Watched: Sendable {
        final class ErrorLog: Sendable {
            let entries = Mutex<[String]>([])
        }

        let client: NATSClient
        let log = ErrorLog()
        private let watcher: Task<Void, Never>

        init(_ client: NATSClient) {
            self.client = client
            let events = client.events()
            let log = log
            watcher = Task {
                for await event in events { if case .error(let error) = event { log.entries.withLock { $0.append("\(error)") } } }
            }
        }

        var errors: [String] { log.entries.withLock { $0 } }

        func violations() -> [String] { errors.filter { $0.lowercased().contains("permissions violation") } }

        func close() async {
            await client.close()
            watcher.cancel()
        }
    }

    static func connect(_ server: NATSServer, _ auth: NATSAuth) async throws -> Watched {
        var options = server.testClientOptions()
        options.auth = auth
        options.allowReconnect = false
        let client = try NATSClient(options: options)
        try await client.connect()
        return Watched(client)
    }

    static func admin(_ server: NATSServer, _ setup: NATSOperator) async throws -> Watched {
        let key = try NKeyPair.generate(.user)
        return try await connect(server, .jwt(try setup.userJWT(for: key, name: "admin"), seed: key.seed))
    }

    /// Everything `subscription` receives from now until `window` has passed (then it is
    /// unsubscribed), as "subject: body".
    static func received(_ subscription: NATSSubscription, within window: Duration = .milliseconds(300)) async throws -> [String] {
        let reading = Task {
            var seen: [String] = []
            for await message in subscription { seen.append("\(message.subject): \(message.string)") }
            return seen
        }
        try await Task.sleep(for: window)
        try await subscription.unsubscribe()
        return await reading.value
    }

    /// Both sides have round-tripped with the server: whatever it delivered is buffered.
    static func settle(_ clients: Watched...) async throws {
        for client in clients { try await client.client.flush() }
        try await Task.sleep(for: .milliseconds(100))
        for client in clients { try await client.client.flush() }
    }

    @Test func theClaimsAllowTheQueueGroupAndRepliesOnlyUntilTheyExpire() throws {
        let setup = try Setup()
        let now = Date()
        let jwt = try NATSJWT(token: try setup.agentJWT(now: now))
        #expect(jwt.claims.subject == setup.agentKey.publicKey)
        #expect(jwt.claims.issuer == setup.setup.signingKey.publicKey)
        #expect(jwt.claims.nats["issuer_account"] == .string(setup.setup.accountKey.publicKey))
        #expect(jwt.claims.nats["pub"] == ["deny": [">"]])
        #expect(jwt.claims.nats["sub"] == ["allow": [.string("\(Self.subject) \(Self.queue)")]])
        #expect(jwt.claims.nats["resp"] == ["max": 1, "ttl": .int(5_000_000_000)])
        #expect(jwt.claims.nats["subs"] == 1)
        #expect(jwt.claims.expires == Int64(now.timeIntervalSince1970) + 60)
        // Only an account key signs; only a user key is signed for.
        #expect(throws: DirectTriggerSetupError.self) {
            try TriggerCredentials(signer: try NKeyPair.generate(.user), account: nil, lifetime: .seconds(60), replyWindow: .seconds(5))
        }
        #expect(throws: DirectTriggerSetupError.self) {
            try setup.credentials.jwt(for: setup.setup.accountKey.publicKey, subjects: [Self.subject], queue: Self.queue, name: "x")
        }
    }

    @Test func theAgentServesItsSubjectAndRepliesOnce() async throws {
        let setup = try Setup()
        try await withNATSServer(config: setup.setup.serverConfig, jetStream: false) { server in
            let admin = try await Self.admin(server, setup.setup)
            let agent = try await Self.connect(server, .jwt(try setup.agentJWT(), seed: setup.agentKey.seed))
            let requests = try await agent.client.subscribe(to: Self.subject, queue: Self.queue)
            try await agent.client.flush()
            let replies = try await admin.client.subscribe(to: "_INBOX.victim.*")
            try await admin.client.publish("ping", to: Self.subject, replyTo: "_INBOX.victim.1")
            let request = try #require(try await collect(requests, count: 1).first)
            let replyTo = try #require(request.replyTo)
            // The reply goes through; a second one to the same requester does not.
            try await agent.client.publish("first", to: replyTo)
            try await agent.client.publish("second", to: replyTo)
            try await Self.settle(agent, admin)
            #expect(try await Self.received(replies) == ["\(replyTo): first"])
            #expect(agent.violations().count == 1, "\(agent.errors)")
            await agent.close()
            await admin.close()
        }
    }

    @Test func everythingElseIsRefused() async throws {
        let setup = try Setup()
        try await withNATSServer(config: setup.setup.serverConfig, jetStream: false) { server in
            let admin = try await Self.admin(server, setup.setup)
            let attacker = try await Self.connect(server, .jwt(try setup.agentJWT(), seed: setup.agentKey.seed))
            // Subscriptions outside the queue group, in another group, on other subjects.
            let plain = try await attacker.client.subscribe(to: Self.subject)
            let otherGroup = try await attacker.client.subscribe(to: Self.subject, queue: "evil")
            let wider = try await attacker.client.subscribe(to: "fn.>")
            let inboxes = try await attacker.client.subscribe(to: "_INBOX.>")
            try await Self.settle(attacker, admin)
            try await admin.client.publish("secret", to: Self.subject)
            try await admin.client.publish("reply data", to: "_INBOX.someone.else")
            // Publishing: to a trigger subject, the JetStream API, another client's inbox.
            let watched = try await admin.client.subscribe(to: ">")
            try await admin.client.flush()
            for target in [Self.subject, "$JS.API.INFO", "_INBOX.someone.else", "anything"] {
                try await attacker.client.publish("forged", to: target)
            }
            try await Self.settle(attacker, admin)
            for subscription in [plain, otherGroup, wider, inboxes] {
                #expect(try await Self.received(subscription, within: .milliseconds(50)) == [], "\(subscription.subject)")
            }
            let seen = try await Self.received(watched)
            #expect(!seen.contains { $0.hasSuffix("forged") }, "\(seen)")
            #expect(attacker.violations().count >= 8, "\(attacker.errors)")
            await attacker.close()
            await admin.close()
        }
    }

    @Test func anExpiredJWTDoesNotLogIn() async throws {
        let setup = try Setup()
        try await withNATSServer(config: setup.setup.serverConfig, jetStream: false) { server in
            let expired = try setup.agentJWT(now: Date().addingTimeInterval(-120))
            await #expect(throws: (any Error).self) {
                _ = try await Self.connect(server, .jwt(expired, seed: setup.agentKey.seed))
            }
            // Another key cannot use the agent's JWT either.
            let thief = try NKeyPair.generate(.user)
            await #expect(throws: (any Error).self) {
                _ = try await Self.connect(server, .jwt(try setup.agentJWT(), seed: thief.seed))
            }
        }
    }
}
