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

        func agentJWT(subjects: [String] = [subject], source: String? = "127.0.0.1", now: Date = Date()) throws -> String {
            try credentials.jwt(for: agentKey.publicKey, subjects: subjects, queue: queue, name: "echo", source: source,
                                now: now).token
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
        #expect(jwt.claims.nats["src"] == ["127.0.0.1/32"])
        #expect(jwt.claims.nats["allowed_connection_types"] == ["STANDARD"])
        #expect(jwt.claims.expires == Int64(now.timeIntervalSince1970) + 60)
        // Only an account key signs; only a user key is signed for.
        #expect(throws: DirectTriggerSetupError.self) {
            try TriggerCredentials(signer: try NKeyPair.generate(.user), account: nil, lifetime: .seconds(60), replyWindow: .seconds(5))
        }
        #expect(throws: DirectTriggerSetupError.self) {
            try setup.credentials.jwt(for: setup.setup.accountKey.publicKey, subjects: [Self.subject], queue: Self.queue, name: "x")
        }
        // A '*' token would let its holder subscribe to '>' in its place: no JWT for it.
        for subject in ["fn.*", "*", "fn.*.x", "fn.a.*.>"] {
            #expect(throws: DirectTriggerSetupError.self, "\(subject)") { try setup.agentJWT(subjects: [subject]) }
            #expect(!TriggerCredentials.canServe([subject]))
        }
        #expect(TriggerCredentials.canServe(["fn.>", "fn.a", "fn.a.>"]))
    }

    /// A trailing '>' stays what it says: the holder cannot widen it within its queue group.
    @Test func aWildcardTriggerCannotBeWidened() async throws {
        let setup = try Setup()
        try await withNATSServer(config: setup.setup.serverConfig, jetStream: false) { server in
            let admin = try await Self.admin(server, setup.setup)
            let attacker = try await Self.connect(server, .jwt(try setup.agentJWT(subjects: ["fn.direct.>"]), seed: setup.agentKey.seed))
            let own = try await attacker.client.subscribe(to: "fn.direct.>", queue: Self.queue)
            var wider: [NATSSubscription] = []
            for subject in ["fn.>", ">", "fn.*.>", "fn.*", "*.direct.>"] {
                wider.append(try await attacker.client.subscribe(to: subject, queue: Self.queue))
            }
            try await Self.settle(attacker, admin)
            for subject in ["fn.other.x", "fn.x", "other.direct.x", "fn.direct.mine"] {
                try await admin.client.publish("data", to: subject)
            }
            try await Self.settle(attacker, admin)
            #expect(try await Self.received(own) == ["fn.direct.mine: data"])
            for subscription in wider {
                #expect(try await Self.received(subscription, within: .milliseconds(50)) == [], "\(subscription.subject)")
            }
            // The subscription limit counts the wider attempts as refused, not held.
            #expect(attacker.violations().count >= 5, "\(attacker.errors)")
            await attacker.close()
            await admin.close()
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

    @Test func aJWTOutOfItsTermPlaceOrKeyDoesNotLogIn() async throws {
        let setup = try Setup()
        try await withNATSServer(config: setup.setup.serverConfig, jetStream: false) { server in
            func refused(_ auth: NATSAuth) async -> Bool {
                do {
                    let client = try await Self.connect(server, auth)
                    await client.close()
                    return false
                } catch {
                    return "\(error)".lowercased().contains("authorization")
                }
            }
            // The control: the same JWT, on time, from its place, with its key.
            let onTime = try setup.agentJWT(), expired = try setup.agentJWT(now: Date().addingTimeInterval(-120))
            let elsewhere = try setup.agentJWT(source: "10.99.99.99"), otherKey = try NKeyPair.generate(.user).seed
            #expect(!(await refused(.jwt(onTime, seed: setup.agentKey.seed))))
            #expect(await refused(.jwt(expired, seed: setup.agentKey.seed)))
            #expect(await refused(.jwt(elsewhere, seed: setup.agentKey.seed)))
            #expect(await refused(.jwt(onTime, seed: otherKey)))
        }
    }

    @Test func reportedInvocationsAreTakenAtABoundedRate() {
        var budget = InvocationBudget(perSecond: 1000)
        let start = ContinuousClock.now
        #expect(budget.take(800, now: start) == 800)
        #expect(budget.take(800, now: start) == 200)
        #expect(budget.take(10, now: start + .milliseconds(1)) == 1)
        #expect(budget.take(5000, now: start + .seconds(10)) == 1000)
    }

    @Test func theNodeMustBeAUserOfTheAccountItSignsFor() throws {
        let setup = try NATSOperator()
        let user = try NKeyPair.generate(.user)
        let jwt = try setup.userJWT(for: user)
        try NexNode.checkAccount(of: .jwt(jwt, seed: user.seed), is: setup.accountKey.publicKey)
        #expect(throws: NodeStartError.self) {
            try NexNode.checkAccount(of: .jwt(jwt, seed: user.seed), is: try NKeyPair.generate(.account).publicKey)
        }
        #expect(throws: NodeStartError.self) { try NexNode.checkAccount(of: .none, is: setup.accountKey.publicKey) }
        #expect(throws: NodeStartError.self) { try NexNode.checkAccount(of: .nkey(seed: user.seed), is: setup.accountKey.publicKey) }
    }
}
