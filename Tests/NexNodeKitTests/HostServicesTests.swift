import Foundation
import Logging
import NATSTestSupport
import NATSWire
import NexAgentBus
import Testing
@testable import NexNodeKit
import NexWorkloads

/// A real nats-server with JetStream (the workloads' NATS), a real agent bus with the node's
/// in-process link and one user per agent, the host services server on the node's link, and
/// each agent's own bus connection: requests travel exactly as a function's would.
final class HostServicesHarness: Sendable {
    let nats: NATSServer
    let bus: AgentBus
    let nodeBus: BusLink
    /// The workloads' connection to nats-server (host services act through it).
    let workload: NATSClient
    let server: HostServicesServer
    let agents: [String: NATSClient]

    /// Agent id → (namespace, workload) it runs. Agents registered on the bus but absent here are unknown to the node.
    static let defaultAgents = ["agent1": ("team", "echo"), "agent2": ("team", "other")]

    private init(nats: NATSServer, bus: AgentBus, nodeBus: BusLink, workload: NATSClient,
                 server: HostServicesServer, agents: [String: NATSClient]) {
        self.nats = nats; self.bus = bus; self.nodeBus = nodeBus; self.workload = workload
        self.server = server; self.agents = agents
    }

    static func start(
        _ configuration: HostServicesConfiguration = HostServicesConfiguration(),
        running: [String: (String, String)] = defaultAgents, unknownAgents: [String] = ["stranger"], logger: Logger? = nil
    ) async throws -> HostServicesHarness {
        let nats = try await NATSServer.start(jetStream: true)
        let workload = try NATSClient(url: nats.url)
        try await workload.connect()
        let bus = try AgentBus()
        try await bus.start()
        let nodeBus = try await bus.link()
        var agents: [String: NATSClient] = [:]
        for id in Array(running.keys) + unknownAgents {
            let key = try NKeyPair.generate(.user)
            await bus.addUser(publicKey: key.publicKey, permissions: .agent(id))
            agents[id] = try await connect(
                bus: bus, seed: key.seed, name: id, inbox: AgentEnvironment.inboxPrefix(agentID: id))
        }
        let scopes = running.mapValues { HostServiceScope(namespace: $0.0, workloadName: $0.1, connection: workload) }
        var quiet = Logger(label: "host-services-test")
        quiet.logLevel = .critical
        let logger = logger ?? quiet
        let server = HostServicesServer(
            busConnection: nodeBus, configuration: configuration, resolve: { id in scopes[id] }, logger: logger)
        try await server.start()
        return HostServicesHarness(
            nats: nats, bus: bus, nodeBus: nodeBus, workload: workload, server: server, agents: agents)
    }

    private static func connect(bus: AgentBus, seed: String, name: String, inbox: String) async throws -> NATSClient {
        var options = NATSClientOptions(servers: [bus.url])
        options.auth = .nkey(seed: seed)
        options.name = name
        options.inboxPrefix = inbox
        options.allowReconnect = false
        options.requestTimeout = .seconds(10)
        let client = try NATSClient(options: options)
        try await client.connect()
        return client
    }

    /// Sends one request as agent `agent` to `hostint.<agent>.rpc.<ns>.<workload>.<service>.<method>`.
    func call(
        _ service: String, _ method: String, headers: [String: String] = [:], body: [UInt8] = [],
        agent: String = "agent1", namespace: String = "team", workload: String = "echo",
        timeout: Duration = .seconds(10)
    ) async throws -> HostServiceReply {
        try await request(
            "hostint.\(agent).rpc.\(namespace).\(workload).\(service).\(method)", headers: headers, body: body,
            agent: agent, timeout: timeout)
    }

    /// Sends a request on any subject as agent `agent`, and decodes the host-services reply.
    func request(
        _ subject: String, headers: [String: String] = [:], body: [UInt8] = [], agent: String = "agent1",
        timeout: Duration = .seconds(10)
    ) async throws -> HostServiceReply {
        var natsHeaders = NATSHeaders()
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { natsHeaders.append(name, value) }
        let reply = try await agents[agent]!.request(
            body, to: subject, headers: natsHeaders.isEmpty ? nil : natsHeaders,
            timeout: timeout)
        let replyHeaders = reply.headers ?? NATSHeaders()
        guard let codeText = replyHeaders["x-nex-hs-code"], let code = Int(codeText) else {
            throw HostServicesTestError("reply on \(subject) has no x-nex-hs-code: \(replyHeaders)")
        }
        var extra: [String: String] = [:]
        for field in replyHeaders where !field.name.lowercased().hasPrefix("x-nex-hs-") { extra[field.name] = field.value }
        return HostServiceReply(
            code: code, message: replyHeaders["x-nex-hs-msg"] ?? "", headers: extra,
            body: Array(reply.payload.readableBytesView))
    }

    func close() async {
        await server.stop()
        for agent in agents.values { await agent.close() }
        await nodeBus.close()
        await workload.close()
        await bus.shutdown()
        nats.stop()
    }
}

struct HostServicesTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension HostServiceReply {
    var text: String { String(decoding: body, as: UTF8.self) }

    func json() throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(body))
    }
}

/// Runs `body` with a started harness and always closes it.
func withHostServices(
    _ configuration: HostServicesConfiguration = HostServicesConfiguration(),
    running: [String: (String, String)] = HostServicesHarness.defaultAgents, logger: Logger? = nil,
    _ body: (HostServicesHarness) async throws -> Void
) async throws {
    let harness = try await HostServicesHarness.start(configuration, running: running, logger: logger)
    do {
        try await body(harness)
    } catch {
        await harness.close()
        throw error
    }
    await harness.close()
}

@Suite("Host services: kv, objectstore, messaging, scoping")
struct HostServicesTests {
    // MARK: kv

    @Test func keyValueRoundTripThroughTheBus() async throws {
        try await withHostServices { hs in
            let set = try await hs.call("kv", "set", headers: ["x-keyvalue-key": "greeting"], body: Array("hello".utf8))
            #expect(set.code == 200 && set.message == "OK", "\(set)")
            let setResult = try set.json()
            #expect(setResult["success"] == .bool(true))
            #expect((setResult["revision"]?.intValue ?? 0) >= 1)

            let get = try await hs.call("kv", "get", headers: ["x-keyvalue-key": "greeting"])
            #expect(get.code == 200 && get.text == "hello", "\(get)")

            _ = try await hs.call("kv", "set", headers: ["x-keyvalue-key": "other.key"], body: [0, 1, 2])
            let keys = try await hs.call("kv", "keys")
            #expect(keys.code == 200)
            #expect(Set(try keys.json().arrayValue?.compactMap(\.stringValue) ?? []) == ["greeting", "other.key"])

            let delete = try await hs.call("kv", "delete", headers: ["x-keyvalue-key": "greeting"])
            #expect(delete.code == 200 && delete.text == #"{"success":true}"#, "\(delete)")
            let gone = try await hs.call("kv", "get", headers: ["x-keyvalue-key": "greeting"])
            #expect(gone.code == 404 && gone.message == "no such key: greeting", "\(gone)")

            // The bucket is the workload's, made on first use with Nex's size limit.
            let info = try await hs.workload.jetStream().keyValue("hs_team_echo_kv").info()
            #expect(info.config.maxBytes == 524_288)
        }
    }

    @Test func keyValueRefusesBadInput() async throws {
        try await withHostServices { hs in
            let missing = try await hs.call("kv", "get")
            #expect(missing.code == 400 && missing.message == "missing header x-keyvalue-key", "\(missing)")
            let badKey = try await hs.call("kv", "set", headers: ["x-keyvalue-key": "no spaces!"], body: [1])
            #expect(badKey.code == 400 && badKey.message.contains("invalid key 'no spaces!'"), "\(badKey)")
            let trailingDot = try await hs.call("kv", "get", headers: ["x-keyvalue-key": "a."])
            #expect(trailingDot.code == 400, "\(trailingDot)")
            // Over the bucket's max_bytes (512 KiB): refused by JetStream, the bucket named.
            let tooBig = try await hs.call(
                "kv", "set", headers: ["x-keyvalue-key": "big"], body: [UInt8](repeating: 7, count: 600 * 1024))
            #expect(tooBig.code >= 400 && tooBig.message.contains("hs_team_echo_kv"), "\(tooBig)")
            let unknown = try await hs.call("kv", "frob", headers: ["x-keyvalue-key": "a"])
            #expect(unknown.code == 404 && unknown.message == "unknown method frob for kv", "\(unknown)")
        }
    }

    @Test func bucketTemplatesAndJustInTimeProvisioning() async throws {
        var configuration = HostServicesConfiguration()
        configuration.keyValue.bucketTemplate = "fn-${NAMESPACE}_${Workload_Name}"
        configuration.keyValue.maxBytes = 4096
        configuration.objectStore.jitProvision = false
        try await withHostServices(configuration) { hs in
            let set = try await hs.call("kv", "set", headers: ["x-keyvalue-key": "k"], body: [1])
            #expect(set.code == 200, "\(set)")
            let info = try await hs.workload.jetStream().keyValue("fn-team_echo").info()
            #expect(info.config.maxBytes == 4096)

            let list = try await hs.call("objectstore", "list")
            #expect(list.code == 404 && list.message.contains("hs_team_echo_obj does not exist"), "\(list)")
        }
    }

    // MARK: objectstore

    @Test func objectStoreRoundTripThroughTheBus() async throws {
        try await withHostServices { hs in
            let content = (0..<3000).map { UInt8($0 % 251) }
            let put = try await hs.call("objectstore", "put", headers: ["x-object-name": "data/blob.bin"], body: content)
            #expect(put.code == 200, "\(put)")
            let info = try put.json()
            #expect(info["name"] == "data/blob.bin")
            #expect(info["size"]?.intValue == 3000)
            #expect(info["bucket"] == "hs_team_echo_obj")

            let get = try await hs.call("objectstore", "get", headers: ["x-object-name": "data/blob.bin"])
            #expect(get.code == 200 && get.body == content, "\(get.code) \(get.message)")

            let list = try await hs.call("objectstore", "list")
            #expect(list.code == 200)
            #expect(try list.json().arrayValue?.compactMap { $0["name"]?.stringValue } == ["data/blob.bin"])

            let delete = try await hs.call("objectstore", "delete", headers: ["x-object-name": "data/blob.bin"])
            #expect(delete.code == 200 && delete.text == #"{"success":true}"#, "\(delete)")
            let gone = try await hs.call("objectstore", "get", headers: ["x-object-name": "data/blob.bin"])
            #expect(gone.code == 404 && gone.message == "no such object: data/blob.bin", "\(gone)")
            let deleteAgain = try await hs.call("objectstore", "delete", headers: ["x-object-name": "data/blob.bin"])
            #expect(deleteAgain.code == 404, "\(deleteAgain)")
            let emptyList = try await hs.call("objectstore", "list")
            #expect(emptyList.code == 200 && emptyList.text == "[]", "\(emptyList)")

            let missing = try await hs.call("objectstore", "put", body: [1])
            #expect(missing.code == 400 && missing.message == "missing header x-object-name", "\(missing)")
        }
    }

    // MARK: messaging

    @Test func messagingPublishAndRequest() async throws {
        var configuration = HostServicesConfiguration()
        configuration.messaging.requestTimeout = .milliseconds(300)
        try await withHostServices(configuration) { hs in
            let published = try await hs.workload.subscribe(to: "events.fn")
            let responder = try await hs.workload.subscribe(to: "greet")
            let silent = try await hs.workload.subscribe(to: "silent")
            try await hs.workload.flush()
            let responderTask = Task {
                for await message in responder {
                    guard let replyTo = message.replyTo else { continue }
                    try? await hs.workload.publish(Array("hi \(message.string)".utf8), to: replyTo, headers: ["X-Greeter": "1"])
                }
            }
            defer { responderTask.cancel() }

            let publish = try await hs.call("messaging", "publish", headers: ["x-subject": "events.fn"], body: Array("ping".utf8))
            #expect(publish.code == 200 && publish.text == #"{"success":true}"#, "\(publish)")
            let received = try await firstMessage(published, within: .seconds(5))
            #expect(received.string == "ping")

            let request = try await hs.call("messaging", "request", headers: ["x-subject": "greet"], body: Array("bob".utf8))
            #expect(request.code == 200 && request.text == "hi bob", "\(request)")
            #expect(request.headers["X-Greeter"] == "1")

            let nobody = try await hs.call("messaging", "request", headers: ["x-subject": "nobody.home"])
            #expect(nobody.code == 503 && nobody.message == "no responders on nobody.home", "\(nobody)")

            let slow = try await hs.call("messaging", "request", headers: ["x-subject": "silent"])
            #expect(slow.code == 504 && slow.message == "no reply from silent within 300 ms", "\(slow)")
            _ = silent

            let many = try await hs.call("messaging", "requestMany", headers: ["x-subject": "greet"])
            #expect(many.code == 501 && many.message == "messaging requestMany is not supported", "\(many)")

            for bad in ["foo.*", "a..b", "with space", "tail."] {
                let reply = try await hs.call("messaging", "publish", headers: ["x-subject": bad])
                #expect(reply.code == 400 && reply.message.contains(bad), "\(bad): \(reply)")
            }
            let control = try await hs.call("messaging", "publish", headers: ["x-subject": "$NEX.STOP.default.node"])
            #expect(control.code == 403 && control.message.contains("is not allowed"), "\(control)")
            let missing = try await hs.call("messaging", "publish")
            #expect(missing.code == 400 && missing.message == "missing header x-subject", "\(missing)")
        }
    }

    // MARK: Scoping and dispatch

    @Test func anAgentReachesOnlyItsOwnWorkload() async throws {
        try await withHostServices { hs in
            let other = try await hs.call("kv", "get", headers: ["x-keyvalue-key": "k"], workload: "other")
            #expect(other.code == 403 && other.message == "agent agent1 runs team/echo, not team/other", "\(other)")
            let otherNamespace = try await hs.call("kv", "keys", namespace: "prod")
            #expect(otherNamespace.code == 403 && otherNamespace.message == "agent agent1 runs team/echo, not prod/echo")

            let stranger = try await hs.call("kv", "keys", agent: "stranger")
            #expect(stranger.code == 403 && stranger.message.hasPrefix("unknown agent stranger"), "\(stranger)")

            // Same key, two workloads: each sees its own bucket.
            _ = try await hs.call("kv", "set", headers: ["x-keyvalue-key": "k"], body: Array("two".utf8),
                                  agent: "agent2", workload: "other")
            let mine = try await hs.call("kv", "get", headers: ["x-keyvalue-key": "k"])
            #expect(mine.code == 404, "\(mine)")
            let theirs = try await hs.call("kv", "get", headers: ["x-keyvalue-key": "k"], agent: "agent2", workload: "other")
            #expect(theirs.code == 200 && theirs.text == "two")

            // The bus itself keeps agent1 out of agent2's subjects: no reply ever comes.
            await #expect(throws: (any Error).self) {
                _ = try await hs.request("hostint.agent2.rpc.team.other.kv.keys", agent: "agent1", timeout: .milliseconds(500))
            }
        }
    }

    @Test func malformedSubjectsUnknownAndDisabledServices() async throws {
        var configuration = HostServicesConfiguration()
        configuration.enabledServices.remove("http")
        try await withHostServices(configuration) { hs in
            for subject in ["hostint.agent1.rpc.team.echo.kv", "hostint.agent1.rpc.team.echo.kv.get.more", "hostint.agent1.rpc.x"] {
                let reply = try await hs.request(subject)
                #expect(reply.code == 400 && reply.message.hasPrefix("malformed host services subject '\(subject)'"), "\(reply)")
            }
            let unknown = try await hs.call("teleport", "go")
            #expect(unknown.code == 404 && unknown.message == "unknown host service teleport", "\(unknown)")
            let disabled = try await hs.call("http", "get", headers: ["x-http-url": "http://127.0.0.1:1/"])
            #expect(disabled.code == 403 && disabled.message == "host service http is disabled on this node", "\(disabled)")
            let unknownMethod = try await hs.call("objectstore", "rename", headers: ["x-object-name": "a"])
            #expect(unknownMethod.code == 404 && unknownMethod.message == "unknown method rename for objectstore")
        }
    }

    @Test func hugeBodiesAreRefusedByTheBus() async throws {
        try await withHostServices { hs in
            // The bus's max payload is 1 MiB: an agent cannot even send more.
            await #expect(throws: NATSError.self) {
                _ = try await hs.call("kv", "set", headers: ["x-keyvalue-key": "k"], body: [UInt8](repeating: 1, count: 1_100_000))
            }
            // Just under the bus limit, over the bucket's: a clean refusal.
            let reply = try await hs.call(
                "objectstore", "put", headers: ["x-object-name": "big"], body: [UInt8](repeating: 1, count: 1_000_000))
            #expect(reply.code == 413 && reply.message.contains("hs_team_echo_obj") && reply.message.contains("full"), "\(reply)")
        }
    }

    @Test func objectsLargerThanTheBusAreRefusedBeforeReading() async throws {
        try await withHostServices { hs in
            // The bucket exists already, unlimited, with an object put by another client.
            let store = try await hs.workload.jetStream().createObjectStore(ObjectStoreConfig(bucket: "hs_team_echo_obj"))
            try await store.put("huge", data: [UInt8](repeating: 2, count: 2 * 1024 * 1024))
            let huge = try await hs.call("objectstore", "get", headers: ["x-object-name": "huge"])
            #expect(huge.code == 413 && huge.message.contains("more than the agent bus carries"), "\(huge)")
            let list = try await hs.call("objectstore", "list")
            #expect(list.code == 200 && list.text.contains("\"huge\""), "\(list)")
        }
    }

    @Test func stopEndsServing() async throws {
        try await withHostServices { hs in
            let before = try await hs.call("kv", "keys")
            #expect(before.code == 200)
            await hs.server.stop()
            await #expect(throws: (any Error).self) {
                _ = try await hs.call("kv", "keys", timeout: .seconds(1))
            }
        }
    }
}

/// The first message of `subscription`, or an error naming it after `timeout`.
func firstMessage(_ subscription: NATSSubscription, within timeout: Duration) async throws -> NATSMessage {
    try await withThrowingTaskGroup(of: NATSMessage?.self) { group in
        group.addTask {
            for await message in subscription { return message }
            return nil
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        guard let first else { throw HostServicesTestError("no message on \(subscription.subject) within \(timeout)") }
        return first
    }
}
