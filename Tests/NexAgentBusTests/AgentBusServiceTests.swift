import Logging
import NATSTestSupport
import NATSWire
import NexAgentBus
import NIOCore
import ServiceLifecycle
import Testing

/// `AgentBus` as a swift-service-lifecycle `Service`: up while the group runs; on graceful
/// shutdown it closes every agent connection and the node's link, and stops listening.
@Suite struct AgentBusServiceTests {
    @Test func aGracefulShutdownClosesAgentsAndTheLinkAndStopsListening() async throws {
        let test = try await TestBus.start()
        let link = try await test.bus.link()
        let handshakes = try await link.subscribe(to: "hostint.*.handshake")
        let agent = try await test.connectAgent("a1")
        let events = ClientEvents(agent)
        let url = test.bus.url
        let group = ServiceGroup(services: [test.bus], logger: Logger(label: "agent-bus-test"))
        let running = Task { try await group.run() }
        // Serving: the agent reaches the node through the bus.
        try await agent.publish("hello", to: "hostint.a1.handshake")
        var iterator = handshakes.makeAsyncIterator()
        #expect(await iterator.next()?.string == "hello")

        await group.triggerGracefulShutdown()
        try await withTimeLimit(.seconds(10), "the group to end") { try await running.value }
        #expect(await iterator.next() == nil, "the link's subscriptions end")
        try await waitFor("the agent to see its connection closed") {
            !agent.isConnected || events.all.contains { if case .disconnected = $0 { true } else { false } }
        }
        await #expect(throws: NATSError.self) { _ = try await link.request(ByteBuffer(), to: "agentint.a1.ping", timeout: .seconds(1)) }
        var options = NATSClientOptions(servers: [url])
        options.allowReconnect = false
        let late = try NATSClient(options: options)
        await #expect(throws: NATSError.self) { try await late.connect() }
        await agent.close()
    }
}
