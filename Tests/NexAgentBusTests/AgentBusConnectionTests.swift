import Foundation
import NATSTestSupport
import NATSWire
import NIOCore
import Synchronization
import Testing
@testable import NexAgentBus

/// A real nats-server with two nkey users: the node (unrestricted) and agent `<id>`, allowed
/// only what the agent bus allows it.
private struct AgentBusServer {
    let server: NATSServer
    let agentID: String
    let agentKey: NKeyPair
    let nodeKey: NKeyPair

    static func start(agentID: String = "agent-\(UInt32.random(in: 0...UInt32.max))") async throws -> AgentBusServer {
        let agentKey = try NKeyPair.generate(.user), nodeKey = try NKeyPair.generate(.user)
        let config = """
            authorization {
              users = [
                {nkey: "\(nodeKey.publicKey)"}
                {nkey: "\(agentKey.publicKey)", permissions: {
                  publish: {allow: ["hostint.\(agentID).>"]}
                  subscribe: {allow: ["agentint.\(agentID).>", "_INBOX.\(agentID).>"]}
                  allow_responses: true
                }}
              ]
            }
            """
        let server = try await NATSServer.start(config: config, jetStream: false)
        return AgentBusServer(server: server, agentID: agentID, agentKey: agentKey, nodeKey: nodeKey)
    }

    func connectNode() async throws -> NATSClient {
        var options = NATSClientOptions(servers: [server.url])
        options.auth = .nkey(seed: nodeKey.seed)
        options.requestTimeout = .seconds(3)
        let client = try NATSClient(options: options)
        try await client.connect()
        return client
    }

    func agentConnection(handshakeAttempts: Int = 10) throws -> AgentBusConnection {
        try AgentBusConnection(configuration: .init(
            busURL: server.url, agentID: agentID, nkeySeed: agentKey.seed, handshakeAttempts: handshakeAttempts))
    }
}

/// Answers with canned responses and records what it was asked.
private final class RecordingHandler: AgentRequestHandler {
    let deploys = Mutex<[AgentDeployRequest]>([])

    func deploy(_ request: AgentDeployRequest) async -> AgentDeployResponse {
        deploys.withLock { $0.append(request) }
        return AgentDeployResponse(accepted: true, message: "ok", pid: 42, limitsApplied: ["rlimit_nofile"])
    }

    func undeploy() async -> AgentUndeployResponse {
        try? await Task.sleep(for: .milliseconds(50))
        return AgentUndeployResponse(stopped: true, exitCode: -15, message: "killed by signal 15")
    }

    func ping() async -> AgentPingResponse { AgentPingResponse(id: "me", workloadID: "w1", running: true) }

    func trigger(subject: String, payload: ByteBuffer, traceParent: String?) async -> AgentTriggerResult {
        subject == "fail.me" ? .failed("it failed") : .reply(Array(("\(subject):" + String(buffer: payload)).utf8), runtimeNanoseconds: 1234)
    }

    func serveTriggers(_ setup: AgentTriggerSetup) async -> AgentTriggerSetupResponse {
        AgentTriggerSetupResponse(serving: false, message: "no socket channel")
    }
}

private struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "\(what) did not finish in time" }
}

@Suite struct AgentBusConnectionTests {
    @Test func handshakeRetriesUntilTheNodeAnswers() async throws {
        let bus = try await AgentBusServer.start()
        let node = try await bus.connectNode()
        let agent = try bus.agentConnection()
        try await agent.connect()
        let handshake = AgentHandshake(id: bus.agentID, pid: 7, version: "0.1.0", startTime: "2026-01-01T00:00:00Z")
        let done = Task { try await agent.handshake(handshake) }
        try await Task.sleep(for: .milliseconds(150))  // no responder yet: the agent retries
        let requests = try await node.subscribe(to: "hostint.\(bus.agentID).handshake")
        try await node.flush()
        let request = try await withTimeLimit(.seconds(5), "handshake request") {
            for await message in requests { return message }
            throw TestTimeout(what: "subscription ended")
        }
        #expect(try JSONDecoder().decode(AgentHandshake.self, from: Data(request.payload.readableBytesView)) == handshake)
        try await node.publish("{}", to: try #require(request.replyTo))
        // Answer later attempts too: on a busy machine this attempt may already have timed out.
        let responder = Task {
            for await message in requests {
                if let reply = message.replyTo { try? await node.publish("{}", to: reply) }
            }
        }
        defer { responder.cancel() }
        try await withTimeLimit(.seconds(10), "handshake") { try await done.value }
        await agent.close()
        await node.close()
    }

    @Test func handshakeFailsNamingTheSubjectWhenNobodyAnswers() async throws {
        let bus = try await AgentBusServer.start()
        let agent = try bus.agentConnection(handshakeAttempts: 2)
        try await agent.connect()
        let subject = "hostint.\(bus.agentID).handshake"
        await #expect {
            try await withTimeLimit(.seconds(5), "handshake") {
                try await agent.handshake(AgentHandshake(id: bus.agentID, pid: 1, version: "x", startTime: "t"))
            }
        } throws: { error in
            guard case .handshakeFailed(let failed, let attempts, _) = error as? AgentConnectionError else { return false }
            return failed == subject && attempts == 2 && "\(error)".contains(subject)
        }
        await agent.close()
    }

    @Test func requestsReachTheHandlerAndAreAnswered() async throws {
        let bus = try await AgentBusServer.start()
        let node = try await bus.connectNode()
        let agent = try bus.agentConnection()
        try await agent.connect()
        let handler = RecordingHandler()
        let serving = Task { await agent.serve(handler) }
        let id = bus.agentID

        let request = AgentDeployRequest(
            workloadID: "w1", workloadName: "echo", namespace: "default", workloadType: .native, hash: "00",
            totalBytes: 1, artifactPath: "/tmp/x")
        let deployReply = try await node.request(Array(try JSONEncoder().encode(request)), to: "agentint.\(id).deploy")
        let deploy = try JSONDecoder().decode(AgentDeployResponse.self, from: Data(deployReply.payload.readableBytesView))
        #expect(deploy == AgentDeployResponse(accepted: true, message: "ok", pid: 42, limitsApplied: ["rlimit_nofile"]))
        #expect(handler.deploys.withLock { $0 } == [request])

        let malformedReply = try await node.request("{not json", to: "agentint.\(id).deploy")
        let malformed = try JSONDecoder().decode(AgentDeployResponse.self, from: Data(malformedReply.payload.readableBytesView))
        #expect(!malformed.accepted)
        #expect(malformed.message.contains("malformed deploy request on agentint.\(id).deploy"))

        // A ping is answered while an undeploy is in progress.
        async let undeployReply = node.request([], to: "agentint.\(id).undeploy")
        let pingReply = try await node.request([], to: "agentint.\(id).ping")
        #expect(try JSONDecoder().decode(AgentPingResponse.self, from: Data(pingReply.payload.readableBytesView))
            == AgentPingResponse(id: "me", workloadID: "w1", running: true))
        let undeploy = try JSONDecoder().decode(AgentUndeployResponse.self, from: Data(try await undeployReply.payload.readableBytesView))
        #expect(undeploy == AgentUndeployResponse(stopped: true, exitCode: -15, message: "killed by signal 15"))

        let unknown = try await node.request([], to: "agentint.\(id).nonsense")
        #expect(unknown.string.contains("does not handle 'nonsense'"))

        // Triggers: the result with the run time, or the failure in a header, never silence.
        let result = try await node.request(ByteBuffer(string: "hi"), to: "agentint.\(id).trigger",
                                            headers: [AgentTriggerHeader.subject: "orders.new"])
        #expect(result.string == "orders.new:hi" && result.headers?[AgentTriggerHeader.runtime] == "1234")
        let failed = try await node.request(ByteBuffer(), to: "agentint.\(id).trigger",
                                            headers: [AgentTriggerHeader.subject: "fail.me"])
        #expect(failed.headers?[AgentTriggerHeader.error] == "it failed" && failed.payload.readableBytes == 0)
        let headerless = try await node.request([], to: "agentint.\(id).trigger")
        #expect(headerless.headers?[AgentTriggerHeader.error]?.contains("x-nex-trigger-subject") == true)

        await agent.stopServing()
        try await withTimeLimit(.seconds(5), "serve to return") { await serving.value }
        await agent.close()
        await node.close()
    }

    @Test func logsAndEventsArePublishedUnderTheAgentsHostSubjects() async throws {
        let bus = try await AgentBusServer.start()
        let node = try await bus.connectNode()
        let logs = try await node.subscribe(to: "hostint.\(bus.agentID).logs")
        let events = try await node.subscribe(to: "hostint.\(bus.agentID).events.>")
        try await node.flush()
        let agent = try bus.agentConnection()
        try await agent.connect()

        try await agent.publishLogs([ByteBuffer(string: "hello out"), ByteBuffer(), ByteBuffer(string: "third")], stream: "stdout")
        try await agent.publishLogs([ByteBuffer(string: "hello err")], stream: "stderr")
        try await agent.publishLogs([], stream: "stderr")  // nothing
        let event = AgentWorkloadEvent(workloadID: "w1", workloadName: "echo", code: 3, message: "exited with code 3")
        try await agent.publishEvent(AgentVerb.workloadUndeployed, event)
        try await agent.flush()

        let received = try await withTimeLimit(.seconds(5), "logs") { () -> [NATSMessage] in
            var received: [NATSMessage] = []
            for await message in logs {
                received.append(message)
                if received.count == 2 { break }
            }
            return received
        }
        // A batch is one message, its lines joined by "\n" (an empty line included).
        #expect(received.map(\.string) == ["hello out\n\nthird", "hello err"])
        #expect(AgentLogBatch.lines(of: received[0].payload).lines.map { String(buffer: $0) } == ["hello out", "", "third"])
        #expect(received.map { $0.headers?[AgentLogHeader.stream] } == ["stdout", "stderr"])
        let eventMessage = try await withTimeLimit(.seconds(5), "event") {
            for await message in events { return message }
            throw TestTimeout(what: "subscription ended")
        }
        #expect(eventMessage.subject == "hostint.\(bus.agentID).events.workload_undeployed")
        #expect(try JSONDecoder().decode(AgentWorkloadEvent.self, from: Data(eventMessage.payload.readableBytesView)) == event)
        await agent.close()
        await node.close()
    }
}
