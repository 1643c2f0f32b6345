import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import NIOCore
import Synchronization
import Testing

/// `direct_triggers` on a real node (as its unprivileged user) and an operator-mode
/// nats-server: a function's agent serves its triggers on a connection the node made and
/// signed a JWT for, renews it before it expires, comes back after the server restarts, and
/// the node still reports every invocation.
@Suite(.serialized) struct DirectTriggersEndToEndTests {
    /// An operator-mode server's account with the node's creds and its signing key on disk.
    struct Account {
        let setup: NATSOperator
        let directory: TemporaryDirectory
        let credsPath: String
        let signingKeyPath: String

        init() throws {
            setup = try NATSOperator()
            directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-direct-")
            credsPath = try directory.write(try setup.userCreds(name: "nex-node"), to: "node.creds")
            signingKeyPath = try directory.write(setup.signingKey.seed, to: "signing.nk")
            for path in [credsPath, signingKeyPath] { chmod(path, 0o644) }
        }

        func launch(ttlSeconds: Int = 3600) -> NodeProcess.Launch {
            var launch = NodeProcess.Launch(config: """
                {"workload_types": ["wasm", "javascript"],
                 "direct_triggers": {"signing_key_file": "\(signingKeyPath)", "account": "\(setup.accountKey.publicKey)",
                                     "ttl_seconds": \(ttlSeconds)}}
                """)
            launch.extraArguments = ["--creds", credsPath]
            launch.readinessAuth = .credentialsFile(path: credsPath)
            return launch
        }

        func withControlClient<Result>(_ server: NATSServer, _ body: (NexClient) async throws -> Result) async throws -> Result {
            var options = TestConnection.options(url: server.url)
            options.auth = .credentialsFile(path: credsPath)
            let client = try NATSClient(options: options)
            try await client.connect()
            return try await withTeardown({ await client.close() }) {
                try await body(NexClient(connection: client, timeout: .seconds(10)))
            }
        }
    }

    /// One client connection as `/connz?subs=detail` shows it.
    struct Connection: Decodable {
        struct Subscription: Decodable {
            let subject: String
            let qgroup: String?
        }

        let cid: Int
        let name: String?
        let subscriptionsListDetail: [Subscription]?

        enum CodingKeys: String, CodingKey { case cid, name, subscriptionsListDetail = "subscriptions_list_detail" }

        var subscriptions: [String] { (subscriptionsListDetail ?? []).map { "\($0.subject) \($0.qgroup ?? "-")" }.sorted() }
    }

    static func connections(_ server: NATSServer) throws -> [Connection] {
        struct Connz: Decodable { let connections: [Connection] }
        let port = try #require(server.monitoringPort)
        let body = try #require(LoopbackHTTP.get(port: port, path: "/connz?subs=detail&limit=1000"))
        return try JSONDecoder().decode(Connz.self, from: body).connections
    }

    /// The agent's own trigger connection of function `name`, once it serves.
    static func triggerConnection(_ server: NATSServer, function name: String) throws -> Connection? {
        try connections(server).first { $0.name == "nex-agent \(name) triggers" }
    }

    static func echo(_ nex: NexClient, _ subject: String, _ text: String) async throws -> String {
        let reply = try await nex.connection.request(ByteBuffer(string: text), to: subject, timeout: .seconds(5))
        if let failure = reply.headers?[FunctionHeader.error] { throw FunctionTestError("\(subject): \(failure)") }
        let object = try JSONSerialization.jsonObject(with: Data(reply.payload.readableBytesView)) as? [String: String]
        return object?["payload"] ?? ""
    }

    func deployEcho(_ nex: NexClient, node: String, triggers: [String], directory: TemporaryDirectory,
                    issuer: NKeyPair, sender: XKeyPair, network: WorkloadNetwork? = nil) async throws -> RunResponse {
        let path = try FunctionEndToEndTests.example("echo.js", in: directory)
        var submission = try WorkloadSubmission(
            name: "echo", type: "javascript", location: .file(path: path),
            artifactHash: try ArtifactDigest.sha256Hex(ofFile: path), triggerSubjects: triggers)
        submission.network = network
        return try await nex.deploy(submission, namespace: "default", node: node, issuer: issuer, sender: sender)
    }

    @Test func theAgentAnswersOnItsOwnConnectionHoldingOnlyItsTriggers() async throws {
        let account = try Account()
        try await withNATSServer(config: account.setup.serverConfig, jetStream: false, monitoring: true) { server in
            try await withNode(server: server, account.launch()) { node in
                try await account.withControlClient(server) { nex in
                    let events = try await EventRecorder.start(nex, namespace: "default")
                    let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()
                    // In a sandbox without a network: the agent never dials, the node hands it the socket.
                    let run = try await deployEcho(nex, node: node.nodeID, triggers: ["fn.direct.>", "fn.other"],
                                                   directory: account.directory, issuer: issuer, sender: sender, network: WorkloadNetwork.none)
                    #expect(run.started)
                    // The agent takes over from the node: its connection holds exactly the
                    // function's subjects in the function's queue group, and the node none.
                    let agent = try await waitForValue(timeout: .seconds(10), pollInterval: .milliseconds(100), "the agent's trigger connection") {
                        try Self.triggerConnection(server, function: "echo")
                    }
                    #expect(agent.subscriptions == ["fn.direct.> nex:default:echo", "fn.other nex:default:echo"])
                    try await waitFor(timeout: .seconds(5), pollInterval: .milliseconds(100), "the node lets go of the subjects") {
                        let nodes = try Self.connections(server).filter { $0.name?.hasPrefix("nex-node") == true }
                        return nodes.count >= 2 && nodes.allSatisfy { !$0.subscriptions.contains { $0.hasPrefix("fn.") } }
                    }
                    for index in 0..<20 {
                        #expect(try await Self.echo(nex, "fn.direct.\(index)", "call \(index)") == "call \(index)")
                    }
                    // The node still tells of each invocation, from the agent's reports.
                    try await waitFor(timeout: .seconds(5), pollInterval: .milliseconds(50), "20 events; got \(events.summary)") {
                        events.all.filter { $0.type == "function_exec_succeeded" && "\($0.data)".contains("fn.direct.") }.count == 20
                    }
                    let succeeded = try await events.waitFor("function_exec_succeeded")
                    #expect(succeeded.source == "\(node.nodeID)-\(run.id)")

                    _ = try await nex.stopWorkload(namespace: "default", node: node.nodeID, id: run.id, name: "echo", issuer: issuer)
                    try await waitFor(timeout: .seconds(5), pollInterval: .milliseconds(100), "the trigger connection closes") {
                        try Self.triggerConnection(server, function: "echo") == nil
                    }
                    await #expect(throws: NATSError.noResponders(subject: "fn.other")) {
                        _ = try await nex.connection.request("again", to: "fn.other", timeout: .seconds(3))
                    }
                }
            }
        }
    }

    @Test func theConnectionIsRenewedBeforeItsJWTExpiresAndComesBackAfterARestart() async throws {
        let account = try Account()
        try await withNATSServer(config: account.setup.serverConfig, jetStream: false, monitoring: true) { server in
            try await withNode(server: server, account.launch(ttlSeconds: 12)) { node in
                try await account.withControlClient(server) { nex in
                    let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()
                    _ = try await deployEcho(nex, node: node.nodeID, triggers: ["fn.renew"], directory: account.directory,
                                             issuer: issuer, sender: sender)
                    let first = try await waitForValue(timeout: .seconds(10), pollInterval: .milliseconds(100), "the agent's trigger connection") {
                        try Self.triggerConnection(server, function: "echo")
                    }
                    // Renewed at two thirds of 12 s: a new connection replaces the first, and
                    // past the first JWT's expiry every call is still answered.
                    let started = ContinuousClock.now
                    var renewed = false
                    var calls = 0
                    while started.duration(to: .now) < .seconds(15) {
                        #expect(try await Self.echo(nex, "fn.renew", "call \(calls)") == "call \(calls)")
                        calls += 1
                        if let current = try Self.triggerConnection(server, function: "echo"), current.cid != first.cid {
                            renewed = true
                        }
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    #expect(renewed, "the trigger connection was never renewed")
                    // Replaced while valid, not lost at expiry and set up again.
                    #expect(!node.log.contains("trigger connection closed"), "\(node.log)")
                    #expect(try Self.triggerConnection(server, function: "echo")?.subscriptions == ["fn.renew nex:default:echo"])

                    // The server restarts: the agent's connection is gone with it; the node
                    // relays, then hands the agent a new one.
                    try await server.restart()
                    try await waitFor(timeout: .seconds(15), pollInterval: .milliseconds(200), "the function answers again") {
                        (try? await Self.echo(nex, "fn.renew", "back")) == "back"
                    }
                    try await waitFor(timeout: .seconds(15), pollInterval: .milliseconds(200), "the agent serves again") {
                        try Self.triggerConnection(server, function: "echo") != nil
                    }
                    #expect(try await Self.echo(nex, "fn.renew", "after") == "after")
                    try await waitFor(timeout: .seconds(5), pollInterval: .milliseconds(100), "the node lets go again") {
                        try Self.connections(server).filter { $0.name?.hasPrefix("nex-node") == true }
                            .allSatisfy { !$0.subscriptions.contains { $0.hasPrefix("fn.") } }
                    }
                    #expect(node.log.contains("trigger connection closed"))
                }
            }
        }
    }

    /// A trigger with a `*` token cannot be granted narrowly (its holder could subscribe to
    /// `>` in its place): the node keeps relaying it.
    @Test func aStarTriggerStaysWithTheNode() async throws {
        let account = try Account()
        try await withNATSServer(config: account.setup.serverConfig, jetStream: false, monitoring: true) { server in
            try await withNode(server: server, account.launch()) { node in
                try await account.withControlClient(server) { nex in
                    let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()
                    _ = try await deployEcho(nex, node: node.nodeID, triggers: ["fn.star.*"], directory: account.directory,
                                             issuer: issuer, sender: sender)
                    #expect(try await Self.echo(nex, "fn.star.x", "relayed") == "relayed")
                    try await Task.sleep(for: .seconds(1))
                    #expect(try Self.triggerConnection(server, function: "echo") == nil)
                    #expect(try Self.connections(server).contains { $0.subscriptions.contains("fn.star.* nex:default:echo") })
                }
            }
        }
    }

    /// A flood against a slow function served directly: past the in-flight bound the agent
    /// answers "busy" at once instead of queueing without end, every requester gets an answer,
    /// and the function serves on afterwards.
    @Test func aFloodIsBoundedByTheAgent() async throws {
        let account = try Account()
        try await withNATSServer(config: account.setup.serverConfig, jetStream: false, monitoring: true) { server in
            try await withNode(server: server, account.launch()) { node in
                try await account.withControlClient(server) { nex in
                    let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()
                    let path = try account.directory.write(
                        "(subject, payload) => { const end = Date.now() + 3; while (Date.now() < end) {} return 'done'; }",
                        to: "slow.js")
                    chmod(path, 0o644)
                    let submission = try WorkloadSubmission(
                        name: "slow", type: "javascript", location: .file(path: path),
                        artifactHash: try ArtifactDigest.sha256Hex(ofFile: path), triggerSubjects: ["fn.slow"])
                    _ = try await nex.deploy(submission, namespace: "default", node: node.nodeID, issuer: issuer, sender: sender)
                    _ = try await waitForValue(timeout: .seconds(10), pollInterval: .milliseconds(100), "the agent serves") {
                        try Self.triggerConnection(server, function: "slow")
                    }
                    let flood = 1200
                    let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                        for _ in 0..<flood {
                            group.addTask {
                                let reply = try await nex.connection.request("x", to: "fn.slow", timeout: .seconds(30))
                                return reply.headers?[FunctionHeader.error] ?? reply.string
                            }
                        }
                        return try await group.reduce(into: [String]()) { $0.append($1) }
                    }
                    // Every requester is answered: done, busy at once, or timed out in the
                    // function's queue (an invocation's 5 s count from its arrival).
                    let busy = outcomes.filter { $0 == "function slow is busy: 1024 invocations under way" }.count
                    let done = outcomes.filter { $0 == "done" }.count
                    let late = outcomes.filter { $0 == "function slow timed out after 5 s" }.count
                    #expect(busy + done + late == flood, "\(Set(outcomes))")
                    #expect(busy > 0 && done > 900, "busy \(busy), done \(done), timed out \(late)")
                    #expect(try await nex.connection.request("x", to: "fn.slow", timeout: .seconds(5)).string == "done")
                    #expect(try Self.triggerConnection(server, function: "slow") != nil)
                }
            }
        }
    }
}
