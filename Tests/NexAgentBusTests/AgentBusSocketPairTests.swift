import Foundation
import NATSTestSupport
import NATSWire
import NexAgentBus
import NIOCore
import Testing

/// A sandboxed agent's bus connection: one end of a socket pair served by ``AgentBus/adopt(connectedSocket:)``,
/// the other used by the agent's client (``NATSClientOptions/connectedSocket``), held to the
/// same rules as a connection accepted on the listener.
@Suite struct AgentBusSocketPairTests {
    static func pair() throws -> (bus: Int32, client: Int32) {
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        return (ends[0], ends[1])
    }

    static func client(socket: Int32, seed: String, inbox: String) throws -> NATSClient {
        var options = NATSClientOptions(servers: [AgentEnvironment.socketPairURL])
        options.connectedSocket = socket
        options.allowReconnect = false
        options.auth = .nkey(seed: seed)
        options.inboxPrefix = inbox
        options.requestTimeout = .seconds(2)
        return try NATSClient(options: options)
    }

    @Test func anAgentOnASocketPairTalksToTheNodeWithinItsPermissions() async throws {
        try await withTestBus { test in
            let (busEnd, agentEnd) = try Self.pair()
            try await test.bus.adopt(connectedSocket: busEnd)
            let agent = try Self.client(socket: agentEnd, seed: test.agents["a1"]!.seed,
                                        inbox: AgentEnvironment.inboxPrefix(agentID: "a1"))
            try await agent.connect()
            let link = try await test.bus.link()
            let requests = try await link.subscribe(to: AgentBusSubject.toHost("a1", "ping"))
            let answer = Task {
                for await request in requests {
                    try? link.publish(Array("pong".utf8), to: request.replyTo!)
                    return
                }
            }
            let reply = try await agent.request(ByteBuffer(string: "ping"), to: AgentBusSubject.toHost("a1", "ping"))
            #expect(String(buffer: reply.payload) == "pong")
            answer.cancel()
            // Its permissions hold here too: not another agent's subjects.
            await #expect(throws: (any Error).self) {
                _ = try await agent.request(ByteBuffer(string: "x"), to: AgentBusSubject.toHost("a2", "ping"), timeout: .milliseconds(300))
            }
            await agent.close()
        }
    }

    @Test func aSocketPairWithoutAnAgentsKeyIsRefused() async throws {
        try await withTestBus { test in
            let (busEnd, clientEnd) = try Self.pair()
            try await test.bus.adopt(connectedSocket: busEnd)
            let stranger = try Self.client(socket: clientEnd, seed: try NKeyPair.generate(.user).seed, inbox: "_INBOX")
            await #expect(throws: NATSError.self) { try await stranger.connect() }
            await stranger.close()
        }
    }

    @Test func theSocketServesOneConnection() async throws {
        try await withTestBus { test in
            let (busEnd, agentEnd) = try Self.pair()
            try await test.bus.adopt(connectedSocket: busEnd)
            var options = NATSClientOptions(servers: [AgentEnvironment.socketPairURL])
            options.connectedSocket = agentEnd
            options.auth = .nkey(seed: test.agents["a1"]!.seed)
            options.inboxPrefix = AgentEnvironment.inboxPrefix(agentID: "a1")
            options.maxReconnectAttempts = 1
            options.reconnectWait = .milliseconds(10)
            let agent = try NATSClient(options: options)
            try await agent.connect()
            await test.bus.shutdown()
            // The bus is gone: a reconnect has no socket to use and gives up (it never dials the
            // name), so the client closes with an error.
            await #expect(throws: (any Error).self) {
                try await withTimeLimit(.seconds(10), "the client gives up") { try await agent.run() }
            }
        }
    }
}
