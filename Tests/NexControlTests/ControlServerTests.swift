import Foundation
import NATSTestSupport
import NATSWire
import NIOCore
import Synchronization
import Testing
@testable import NexControl

/// ``ControlServer`` and ``NexClient`` against a real nats-server.
@Suite struct ControlServerTests {
    // MARK: Typed client

    @Test func pingOneNode() async throws {
        let node = try CannedNode()
        try await withControlServers([node]) { nex, _ in
            let pong = try await nex.ping(node: node.nodeID)
            #expect(pong == node.pingResponse)
        }
    }

    @Test func pingAllCollectsEveryNode() async throws {
        let first = try CannedNode(tags: ["zone": "a"])
        let second = try CannedNode(tags: ["zone": "b"])
        try await withControlServers([first, second]) { nex, _ in
            let pongs = try await nex.pingAll(window: .seconds(2))
            #expect(Set(pongs.map(\.nodeID)) == [first.nodeID, second.nodeID])
            #expect(pongs.first { $0.nodeID == second.nodeID }?.tags?["zone"] == "b")
        }
    }

    /// Knowing how many nodes there are, a broadcast ends when they all answered, not when the
    /// window does.
    @Test func aBroadcastEndsOnceTheExpectedRepliesAreIn() async throws {
        let first = try CannedNode(), second = try CannedNode()
        try await withControlServers([first, second]) { nex, _ in
            let started = ContinuousClock.now
            let pongs = try await nex.pingAll(window: .seconds(120), expecting: 2)
            let bids = try await nex.auction(AuctionRequest(), window: .seconds(120), expecting: 2)
            #expect(Set(pongs.map(\.nodeID)) == [first.nodeID, second.nodeID])
            #expect(bids.count == 2)
            #expect(started.duration(to: .now) < .seconds(60), "not the two-minute windows")
        }
    }

    @Test func workloadPingAnswersOnlyWithMatchingWorkloads() async throws {
        let busy = try CannedNode(workloads: [.init(id: "w1", namespace: "default", name: "echo", type: "native")])
        let idle = try CannedNode()
        try await withControlServers([busy, idle]) { nex, _ in
            let byName = try await nex.workloadPing(namespace: "default", workload: "echo", window: .seconds(2))
            #expect(byName.map(\.nodeID) == [busy.nodeID])
            #expect(byName.first?.runningMachines.first?.id == "w1")

            let byID = try await nex.workloadPing(namespace: "default", workload: "w1", window: .seconds(2))
            #expect(byID.map(\.nodeID) == [busy.nodeID])

            let wholeNamespace = try await nex.workloadPing(namespace: "default", window: .seconds(2))
            #expect(wholeNamespace.map(\.nodeID) == [busy.nodeID])

            let silence = try await nex.workloadPing(namespace: "default", workload: "nope", window: .seconds(2))
            #expect(silence.isEmpty)
            let otherNamespace = try await nex.workloadPing(namespace: "prod", window: .seconds(2))
            #expect(otherNamespace.isEmpty)
        }
    }

    @Test func auctionAnswersOnlyFromMatchingNodes() async throws {
        let gpu = try CannedNode(tags: ["gpu": "yes"], workloadTypes: ["native", "wasm"])
        let plain = try CannedNode(tags: ["gpu": "no"], workloadTypes: ["native"])
        try await withControlServers([gpu, plain]) { nex, _ in
            let all = try await nex.auction(AuctionRequest(os: "linux"), window: .seconds(2))
            #expect(Set(all.map(\.nodeID)) == [gpu.nodeID, plain.nodeID])

            let matching = try await nex.auction(AuctionRequest(tags: ["gpu": "YES"], workloadTypes: ["wasm"]),
                                                 window: .seconds(2))
            #expect(matching.map(\.nodeID) == [gpu.nodeID])
            #expect(matching.first?.targetXKey == gpu.xkey.publicKey)

            let silence = try await nex.auction(AuctionRequest(arch: "s390x"), window: .seconds(2))
            #expect(silence.isEmpty)
        }
    }

    @Test func info() async throws {
        let node = try CannedNode(workloads: [
            .init(id: "w1", namespace: "default", name: "echo", type: "native"),
            .init(id: "w2", namespace: "prod", name: "web", type: "wasm"),
        ])
        try await withControlServers([node]) { nex, _ in
            let info = try await nex.info(namespace: "default", node: node.nodeID)
            #expect(info.publicXKey == node.xkey.publicKey)
            #expect(info.machines.map(\.id) == ["w1"])
            #expect(info.memory?.total == 16_000_000)
            #expect(info.supportedWorkloadTypes == ["native", "wasm"])
        }
    }

    @Test func lameDuck() async throws {
        let node = try CannedNode()
        try await withControlServers([node]) { nex, _ in
            let answer = try await nex.lameDuck(node: node.nodeID)
            #expect(answer == LameDuckResponse(nodeID: node.nodeID, success: true, message: "delay none"))
            let delayed = try await nex.lameDuck(node: node.nodeID, delay: .milliseconds(1500))
            #expect(delayed == LameDuckResponse(nodeID: node.nodeID, success: true, message: "delay 1500ms"))
        }
    }

    @Test func deployAndStopWithClaimsAndSealedEnvironment() async throws {
        let node = try CannedNode()
        let issuer = try NKeyPair.generate(.account)
        let sender = try XKeyPair.generate()
        try await withControlServers([node]) { nex, _ in
            let pong = try await nex.ping(node: node.nodeID)
            let claims = try WorkloadClaims.deploy(name: "echo", artifactHash: String(repeating: "c", count: 64), issuer: issuer)
            let request = try EnvironmentSealing.deployRequest(
                type: "native", location: "nats://NEXCLIFILES/echo", workloadJWT: claims.token,
                environment: ["GREETING": "hello"], sender: sender, targetNode: pong.nodeID, targetXKey: pong.targetXKey)
            let run = try await nex.deploy(namespace: "default", node: node.nodeID, request: request)
            #expect(run == RunResponse(started: true, id: "w-echo", issuer: issuer.publicKey, name: "echo"))
            #expect(node.state.withLock { $0.environments["w-echo"] } == ["GREETING": "hello"])

            // Replaying the deploy JWT as a stop JWT is refused, with the reason.
            let replay = StopRequest(workloadID: "w-echo", workloadJWT: claims.token, targetNode: node.nodeID)
            await #expect(throws: NexControlError.nodeRefused(
                subject: NexSubject.stop(namespace: "default", node: node.nodeID),
                message: WorkloadClaimsError.replayedToken(name: "echo", jti: claims.id).description
            )) {
                try await nex.stop(namespace: "default", node: node.nodeID, request: replay)
            }

            // A fresh stop JWT from the same second is fine.
            let sameSecond = Date(timeIntervalSince1970: TimeInterval(claims.issuedAt))
            let stopClaims = try WorkloadClaims.stop(name: "echo", issuer: issuer, issuedAt: sameSecond)
            let stop = StopRequest(workloadID: "w-echo", workloadJWT: stopClaims.token, targetNode: node.nodeID)
            let stopped = try await nex.stop(namespace: "default", node: node.nodeID, request: stop)
            #expect(stopped == StopResponse(stopped: true, id: "w-echo", issuer: issuer.publicKey, name: "echo"))
        }
    }

    @Test func deployWithEnvironmentForAnotherNodeIsRefused() async throws {
        let node = try CannedNode()
        let elsewhere = try XKeyPair.generate()
        try await withControlServers([node]) { nex, _ in
            let claims = try WorkloadClaims.deploy(
                name: "echo", artifactHash: String(repeating: "c", count: 64), issuer: NKeyPair.generate(.account))
            let request = try EnvironmentSealing.deployRequest(
                type: "native", location: "nats://B/k", workloadJWT: claims.token, environment: ["A": "b"],
                sender: XKeyPair.generate(), targetNode: node.nodeID, targetXKey: elsewhere.publicKey)
            let error = try await nodeRefusal { try await nex.deploy(namespace: "default", node: node.nodeID, request: request) }
            #expect(error.contains("cannot open the environment"))
        }
    }

    @Test func refusalsCarryTheHandlersMessage() async throws {
        let node = try CannedNode(refusal: "node is in lame duck mode")
        try await withControlServers([node]) { nex, _ in
            let deploy = DeployRequest(type: "native", location: "nats://B/k", workloadJWT: "jwt", environment: "",
                                       senderPublicKey: "X", targetNode: node.nodeID)
            await #expect(throws: NexControlError.nodeRefused(
                subject: "$NEX.DEPLOY.default.\(node.nodeID)", message: "node is in lame duck mode"
            )) {
                try await nex.deploy(namespace: "default", node: node.nodeID, request: deploy)
            }
            let stop = StopRequest(workloadID: "w1", workloadJWT: "jwt", targetNode: node.nodeID)
            await #expect(throws: NexControlError.nodeRefused(
                subject: "$NEX.STOP.default.\(node.nodeID)", message: "node is in lame duck mode"
            )) {
                try await nex.stop(namespace: "default", node: node.nodeID, request: stop)
            }
            let pong = try await nex.ping(node: node.nodeID)
            #expect(pong.nodeID == node.nodeID)
        }
    }

    @Test func eventsReceivesCloudEvents() async throws {
        let node = try CannedNode()
        try await withControlServers([node]) { nex, publisher in
            let events = try await nex.events()
            try await nex.connection.flush()
            let event = NexEvent(source: node.nodeID, type: NexEventType.nodeStarted,
                                 data: NodeStartedEvent(version: "0.1.0", id: node.nodeID, tags: ["a": "b"]))
            try await publisher.publish("not a cloud event", to: "$NEX.events.system.heartbeat")
            try await publisher.publish(ByteBuffer(bytes: try JSONEncoder().encode(event)),
                                        to: NexSubject.event(namespace: "system", type: NexEventType.nodeStarted))
            // If nothing arrives, closing the connection ends the sequence and the test fails.
            let connection = nex.connection
            let watchdog = Task {
                try await Task.sleep(for: .seconds(5))
                await connection.close()
            }
            defer { watchdog.cancel() }
            var received: NexEvent<JSONValue>?
            for await event in events {
                received = event
                break
            }
            let first = try #require(received, "no event within 5 s")
            #expect(first.type == "node_started")
            #expect(first.source == node.nodeID)
            #expect(first.id == event.id)
            #expect(first.data["id"] == .string(node.nodeID))
            #expect(first.data["tags"]?["a"] == "b")
        }
    }

    // MARK: Hostile input

    /// Every subject served, with the reply type it answers with.
    static let servedSubjects: [(name: String, type: String)] = [
        ("PING", ControlResponseType.ping), ("PING.<node>", ControlResponseType.ping),
        ("WPING.default", ControlResponseType.ping), ("WPING.default.echo", ControlResponseType.ping),
        ("AUCTION", ControlResponseType.auction), ("INFO.default.<node>", ControlResponseType.info),
        ("DEPLOY.default.<node>", ControlResponseType.run), ("STOP.default.<node>", ControlResponseType.stop),
        ("LAMEDUCK.<node>", ControlResponseType.lameDuck),
    ]

    @Test(arguments: servedSubjects)
    func hostileInputGetsAnErrorEnvelope(subject name: String, type: String) async throws {
        let node = try CannedNode(workloads: [.init(id: "w1", namespace: "default", name: "echo", type: "native")])
        try await withControlServers([node]) { nex, user in
            let subject = "$NEX." + name.replacingOccurrences(of: "<node>", with: node.nodeID)
            var cases: [(body: [UInt8], mentions: String)] = [
                (Array(#"{"type": "native", "#.utf8), "malformed JSON"),
                (Array("null".utf8), "not null"),
                (Array("[1,2,3]".utf8), "JSON object"),
                (Array(#""a string""#.utf8), "JSON object"),
                (Array("42".utf8), "JSON object"),
                ([0xFF, 0xFE, 0x00, 0x7B], "malformed JSON"),
                (Array(repeating: UInt8(ascii: " "), count: ControlServer.maxRequestBytes + 1), "exceeds the limit"),
            ]
            switch type {
            case ControlResponseType.run:
                cases += [
                    (Array(#"{"type": 5}"#.utf8), "'type'"),
                    (Array(#"{"type":"native","location":"nats://B/k","workload_jwt":"j","environment":"e"}"#.utf8),
                     "'sender_public_key'"),
                    (Array(#"{"type":"native","location":"l","workload_jwt":"j","environment":"e","sender_public_key":"X","target_node":"N","argv":"-v"}"#.utf8),
                     "'argv'"),
                    ([], "empty request body"),
                ]
            case ControlResponseType.stop:
                cases += [
                    (Array(#"{"workload_id": 5, "workload_jwt": "j", "target_node": "N"}"#.utf8), "'workload_id'"),
                    (Array(#"{"workload_id": "w1"}"#.utf8), "'workload_jwt'"),
                    (Array(#"{"workload_id": null, "workload_jwt": "j", "target_node": "N"}"#.utf8), "'workload_id'"),
                    ([], "empty request body"),
                ]
            case ControlResponseType.lameDuck:
                cases += [
                    (Array(#"{"delay": 5}"#.utf8), "'delay'"),
                    (Array(#"{"delay": "forever"}"#.utf8), "delay 'forever' is not a duration"),
                    (Array(#"{"delay": "-1s"}"#.utf8), "is not a duration"),
                    (Array(#"{"delay": "25h"}"#.utf8), "at most 24h"),
                    (Array(#"{"delay": "1e400s"}"#.utf8), "is not a duration"),
                    (Array(#"{"delay": "9300000000s"}"#.utf8), "is not a duration"),
                    (Array(#"{"delay": "10"}"#.utf8), "is not a duration"),
                ]
            case ControlResponseType.auction:
                cases += [
                    (Array(#"{"tags": 5}"#.utf8), "'tags'"),
                    (Array(#"{"workload_types": "native"}"#.utf8), "'workload_types'"),
                    (Array(#"{"sandboxed": "yes"}"#.utf8), "'sandboxed'"),
                ]
            default:
                break
            }
            for (body, mentions) in cases {
                let reply = try await user.request(ByteBuffer(bytes: body), to: subject, timeout: .seconds(3))
                let object = try #require(
                    try JSONSerialization.jsonObject(with: Data(reply.payload.readableBytesView)) as? [String: Any],
                    "reply to \(body.count) bytes on \(subject)")
                #expect(Set(object.keys) == ["type", "data", "error"], "\(subject): \(object)")
                #expect(object["type"] as? String == type)
                #expect(object["data"] as? String == "")
                let error = object["error"] as? String ?? ""
                #expect(error.contains(mentions), "\(subject), \(body.count) bytes: error '\(error)' should mention \(mentions)")
            }
            // Still serving.
            let pong = try await nex.ping(node: node.nodeID)
            #expect(pong.nodeID == node.nodeID)
            let info = try await nex.info(namespace: "default", node: node.nodeID)
            #expect(info.machines.count == 1)
        }
    }

    @Test func emptyBodiesAreFineWhereNoBodyIsExpected() async throws {
        let node = try CannedNode()
        try await withControlServers([node]) { _, user in
            for subject in ["$NEX.PING", "$NEX.PING.\(node.nodeID)", "$NEX.INFO.default.\(node.nodeID)",
                            "$NEX.LAMEDUCK.\(node.nodeID)", "$NEX.AUCTION"] {
                for body in ["", "{}", #"{"unknown": [1, 2]}"#] {
                    let reply = try await user.request(body, to: subject, timeout: .seconds(3))
                    let object = try #require(
                        try JSONSerialization.jsonObject(with: Data(reply.payload.readableBytesView)) as? [String: Any])
                    #expect(object["error"] == nil, "\(subject) with '\(body)': \(object)")
                    #expect(object["data"] is [String: Any])
                }
            }
        }
    }
}

// MARK: - Test node

/// A node with canned data: what ``ControlServer`` calls on each request.
struct CannedNode: NodeControlHandler {
    struct State {
        var deployments: [String: WorkloadClaims] = [:]
        var environments: [String: [String: String]] = [:]
    }

    let nodeID: String
    let xkey: XKeyPair
    let tags: [String: String]
    let workloadTypes: [String]
    let workloads: [WorkloadPingResponse.Machine]
    /// When set, deploy and stop are refused with this message.
    let refusal: String?
    let state = SharedState()

    final class SharedState: Sendable {
        private let mutex = Mutex(State())
        func withLock<T>(_ body: (inout State) -> T) -> T { mutex.withLock { body(&$0) } }
    }

    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    init(tags: [String: String] = [:], workloadTypes: [String] = ["native", "wasm"],
         workloads: [WorkloadPingResponse.Machine] = [], refusal: String? = nil) throws {
        nodeID = try NKeyPair.generate(.server).publicKey
        xkey = try XKeyPair.generate()
        self.tags = tags.merging(["nex.os": "linux", "nex.arch": "amd64"]) { mine, _ in mine }
        self.workloadTypes = workloadTypes
        self.workloads = workloads
        self.refusal = refusal
    }

    var pingResponse: PingResponse {
        PingResponse(nodeID: nodeID, nexus: "test", version: "0.0.1-test", uptime: "1m2s", targetXKey: xkey.publicKey,
                     tags: tags, runningMachines: workloads.count)
    }

    func ping() async -> PingResponse { pingResponse }

    func workloadPing(namespace: String, workload: String?) async -> WorkloadPingResponse? {
        let matching = workloads.filter { machine in
            machine.namespace == namespace && (workload == nil || machine.id == workload || machine.name == workload)
        }
        guard !matching.isEmpty else { return nil }
        return WorkloadPingResponse(nodeID: nodeID, targetXKey: xkey.publicKey, version: "0.0.1-test", tags: tags,
                                    uptime: "1m2s", runningMachines: matching)
    }

    func auction(_ request: AuctionRequest) async -> PingResponse? {
        if let arch = request.arch, arch != tags["nex.arch"] { return nil }
        if let os = request.os, os != tags["nex.os"] { return nil }
        for (key, value) in request.tags ?? [:] where tags[key]?.lowercased() != value.lowercased() { return nil }
        for type in request.workloadTypes ?? [] where !workloadTypes.contains(type) { return nil }
        return pingResponse
    }

    func info(namespace: String) async throws -> InfoResponse {
        let machines = workloads.filter { $0.namespace == namespace }.map { machine in
            MachineSummary(id: machine.id, healthy: true, uptime: "5s", namespace: machine.namespace,
                           workload: .init(name: machine.name, description: nil, runtime: "5s", type: machine.type,
                                           hash: String(repeating: "0", count: 64)))
        }
        return InfoResponse(version: "0.0.1-test", uptime: "1m2s", publicXKey: xkey.publicKey, tags: tags,
                            memory: .init(total: 16_000_000, free: 8_000_000, available: 12_000_000),
                            machines: machines, supportedWorkloadTypes: workloadTypes)
    }

    func deploy(namespace: String, request: DeployRequest) async throws -> RunResponse {
        if let refusal { throw Refusal(description: refusal) }
        let environment = try EnvironmentSealing.open(request.environment, senderPublicKey: request.senderPublicKey,
                                                      recipient: xkey)
        let claims = try WorkloadClaims.verifyDeploy(request.workloadJWT)
        let id = "w-\(claims.name)"
        state.withLock {
            $0.deployments[id] = claims
            $0.environments[id] = environment
        }
        return RunResponse(started: true, id: id, issuer: claims.issuer, name: claims.name)
    }

    func stop(namespace: String, request: StopRequest) async throws -> StopResponse {
        if let refusal { throw Refusal(description: refusal) }
        guard let deployed = state.withLock({ $0.deployments[request.workloadID] }) else {
            throw Refusal(description: "No such workload")
        }
        let stop = try deployed.verifyStop(request.workloadJWT)
        state.withLock { _ = $0.deployments.removeValue(forKey: request.workloadID) }
        return StopResponse(stopped: true, id: request.workloadID, issuer: stop.issuer, name: stop.name)
    }

    func lameDuck(_ request: LameDuckRequest) async throws -> LameDuckResponse {
        LameDuckResponse(nodeID: nodeID, success: true, message: "delay \(request.delay ?? "none")")
    }
}

// MARK: - Harness

/// Starts a nats-server (with `max_payload: 4MB`, so oversized requests reach the node), serves
/// each node with a ``ControlServer`` on its own connection, waits until every node answers,
/// and runs `body` with a ``NexClient`` and a second, raw connection.
func withControlServers(
    _ nodes: [CannedNode], _ body: @Sendable (NexClient, NATSClient) async throws -> Void
) async throws {
    try await withNATSServer(config: "max_payload: 4MB", jetStream: false) { server in
        var clients: [NATSClient] = []
        for _ in nodes { clients.append(try await server.connectedClient()) }
        clients.append(try await server.connectedClient())
        clients.append(try await server.connectedClient())
        let nex = NexClient(connection: clients[nodes.count], timeout: .seconds(3))
        let raw = clients[nodes.count + 1]
        let served = Array(zip(nodes, clients))
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (node, client) in served {
                    group.addTask {
                        try await ControlServer(nodeID: node.nodeID, client: client, handler: node,
                                                logger: client.options.logger).run()
                    }
                }
                for node in nodes {
                    _ = try await waitForValue(timeout: .seconds(5), "node \(node.nodeID) answers") {
                        try? await nex.ping(node: node.nodeID)
                    }
                }
                try await body(nex, raw)
                group.cancelAll()
            }
        } catch {
            for client in clients { await client.close() }
            throw error
        }
        for client in clients { await client.close() }
    }
}

/// Runs `operation`, which must fail with ``NexControlError/nodeRefused(subject:message:)``, and
/// returns the node's message.
func nodeRefusal(_ operation: () async throws -> Any) async throws -> String {
    do {
        let value = try await operation()
        Issue.record("expected a refusal, got \(value)")
        return ""
    } catch let error as NexControlError where error.code == .nodeRefused {
        return error.message
    }
}
