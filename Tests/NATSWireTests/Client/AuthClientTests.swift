import Foundation
import NATSTestSupport
import NATSWire
import NIOCore
import Testing

/// Every authentication method against a nats-server configured for it, and the wrong
/// credential refused with a clear `authorizationFailed`.
@Suite struct AuthClientTests {
    /// Connects with `auth` (and/or credentials in `url`), failing the test on error.
    func connect(_ url: String, auth: NATSAuth = .none) async throws -> NATSClient {
        var options = NATSClientOptions(servers: [url])
        options.auth = auth
        options.connectTimeout = .seconds(3)
        let client = try NATSClient(options: options)
        try await client.connect()
        return client
    }

    /// Expects connecting to be refused by `server` as an authorization failure; returns the message.
    func expectRefused(
        _ url: String, auth: NATSAuth = .none, by server: NATSServer,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let error = await #expect(throws: NATSError.self, sourceLocation: sourceLocation) {
            let client = try await connect(url, auth: auth)
            await client.close()
        }
        guard let failure = error, failure.code == .authorizationFailed, let failedServer = failure.servers.first,
              let message = failure.reason
        else {
            Issue.record("expected authorizationFailed, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        #expect(failedServer == server.url, sourceLocation: sourceLocation)
        #expect(message.localizedCaseInsensitiveContains("authorization violation"), "message: \(message)",
                sourceLocation: sourceLocation)
        let text = error!.description
        #expect(text.contains(server.url) && text.contains("refused the credentials"), "description: \(text)",
                sourceLocation: sourceLocation)
        // The URL credentials never appear in what the error says.
        #expect(!text.contains("@"), "description leaks URL credentials: \(text)", sourceLocation: sourceLocation)
    }

    /// Publishes and receives one message: the connection is authorized for pub/sub.
    func expectPubSubWorks(_ client: NATSClient, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let sub = try await client.subscribe(to: "auth.check")
        try await client.publish("authorized", to: "auth.check")
        let messages = try await collect(sub, count: 1, within: 3)
        #expect(messages.first?.string == "authorized", sourceLocation: sourceLocation)
        try await sub.unsubscribe()
    }

    // MARK: Token

    @Test func token() async throws {
        try await withNATSServer(config: #"authorization { token: "s3cr3t-t0ken" }"#, jetStream: false) { server in
            let client = try await connect(server.url, auth: .token("s3cr3t-t0ken"))
            try await expectPubSubWorks(client)
            await client.close()

            await expectRefused(server.url, auth: .token("wrong-token"), by: server)
            await expectRefused(server.url, by: server)
        }
    }

    @Test func tokenInURL() async throws {
        try await withNATSServer(config: #"authorization { token: "urltoken42" }"#, jetStream: false) { server in
            let client = try await connect("nats://urltoken42@127.0.0.1:\(server.port)")
            try await expectPubSubWorks(client)
            #expect(client.connectedServer == server.url)
            await client.close()

            await expectRefused("nats://nottoken@127.0.0.1:\(server.port)", by: server)
        }
    }

    // MARK: User and password

    static let usersConfig = #"authorization { users: [{user: alice, password: "pa55word"}, {user: bob, password: "other"}] }"#

    @Test func userPassword() async throws {
        try await withNATSServer(config: Self.usersConfig, jetStream: false) { server in
            let client = try await connect(server.url, auth: .userPassword(user: "alice", password: "pa55word"))
            try await expectPubSubWorks(client)
            await client.close()

            await expectRefused(server.url, auth: .userPassword(user: "alice", password: "wrong"), by: server)
            await expectRefused(server.url, auth: .userPassword(user: "mallory", password: "pa55word"), by: server)
            await expectRefused(server.url, by: server)
        }
    }

    @Test func userPasswordInURL() async throws {
        try await withNATSServer(config: Self.usersConfig, jetStream: false) { server in
            let client = try await connect("nats://alice:pa55word@127.0.0.1:\(server.port)")
            try await expectPubSubWorks(client)
            #expect(client.connectedServer == server.url)
            await client.close()

            await expectRefused("nats://alice:nope@127.0.0.1:\(server.port)", by: server)
        }
    }

    // MARK: NKey

    @Test func nkey() async throws {
        let user = try NKeyPair.generate(.user)
        let server = try await NATSServer.start(
            config: "authorization { users: [{nkey: \(user.publicKey)}] }", jetStream: false)
        #expect(server.infoLine?.contains("\"nonce\"") == true)
        let client = try await connect(server.url, auth: .nkey(seed: user.seed))
        try await expectPubSubWorks(client)
        await client.close()

        let stranger = try NKeyPair.generate(.user)
        await expectRefused(server.url, auth: .nkey(seed: stranger.seed), by: server)
        await expectRefused(server.url, by: server)
    }

    @Test func malformedNKeySeedIsRefusedLocally() async throws {
        let user = try NKeyPair.generate(.user)
        let server = try await NATSServer.start(
            config: "authorization { users: [{nkey: \(user.publicKey)}] }", jetStream: false)
        let error = await #expect(throws: NATSError.self) {
            _ = try await connect(server.url, auth: .nkey(seed: "SUNOTASEED"))
        }
        // The handshake fails before CONNECT; the seed problem must be what the error says.
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("seed"), "error: \(text)")
    }

    // MARK: JWT / creds in operator mode

    /// An operator-mode setup (NATSTestSupport's) and one user of its account.
    struct Operator {
        let setup: NATSOperator
        let userKey: NKeyPair
        let userJWT: String
        var serverConfig: String { setup.serverConfig }

        init() throws {
            setup = try NATSOperator()
            userKey = try NKeyPair.generate(.user)
            userJWT = try setup.userJWT(for: userKey)
        }
    }

    @Test func credentialsFileInOperatorMode() async throws {
        let setup = try Operator()
        try await withNATSServer(config: setup.serverConfig, jetStream: false) { server in
            let directory = try TemporaryDirectory(prefix: "natswire-creds-")
            let path = try directory.write(NATSOperator.creds(jwt: setup.userJWT, seed: setup.userKey.seed), to: "user.creds")

            let client: NATSClient
            do {
                client = try await connect(server.url, auth: .credentialsFile(path: path))
            } catch {
                Issue.record("creds connect failed: \(error)\n--- server log ---\n\(server.logContents())")
                return
            }
            try await expectPubSubWorks(client)
            let responder = try await connect(server.url, auth: .credentialsFile(path: path))
            let sub = try await responder.subscribe(to: "jwt.echo")
            try await responder.flush()
            let answering = Task {
                for await message in sub {
                    if let reply = message.replyTo { try? await responder.publish("re:" + message.string, to: reply) }
                }
            }
            #expect(try await client.request("x", to: "jwt.echo", timeout: .seconds(2)).string == "re:x")
            answering.cancel()
            await responder.close()
            await client.close()

            // The same JWT with `.jwt(_:seed:)`.
            let direct = try await connect(server.url, auth: .jwt(setup.userJWT, seed: setup.userKey.seed))
            try await expectPubSubWorks(direct)
            await direct.close()
        }
    }

    @Test func credentialsWithWrongSeedAreRefused() async throws {
        let setup = try Operator()
        try await withNATSServer(config: setup.serverConfig, jetStream: false) { server in
            let directory = try TemporaryDirectory(prefix: "natswire-creds-")

            // The user JWT with another user's seed: the nonce signature does not match the JWT subject.
            let otherSeed = try NKeyPair.generate(.user).seed
            let wrongSeed = try directory.write(NATSOperator.creds(jwt: setup.userJWT, seed: otherSeed), to: "wrong-seed.creds")
            await expectRefused(server.url, auth: .credentialsFile(path: wrongSeed), by: server)

            // A user JWT signed by an account the server does not know.
            let rogueUser = try NKeyPair.generate(.user)
            let rogueJWT = try NATSOperator().userJWT(for: rogueUser)
            let rogue = try directory.write(NATSOperator.creds(jwt: rogueJWT, seed: rogueUser.seed), to: "rogue.creds")
            await expectRefused(server.url, auth: .credentialsFile(path: rogue), by: server)

            // No credentials at all.
            await expectRefused(server.url, by: server)
        }
    }

    @Test func missingCredentialsFileIsAClearLocalError() async throws {
        let setup = try Operator()
        try await withNATSServer(config: setup.serverConfig, jetStream: false) { server in
            let path = "/nonexistent/dir/natswire-missing.creds"
            let error = await #expect(throws: NATSError.self) {
                _ = try await connect(server.url, auth: .credentialsFile(path: path))
            }
            let text = error.map { "\($0)" } ?? ""
            #expect(text.contains(path), "error: \(text)")
        }
    }
}
