import Logging
import NATSTestSupport
import NATSWire
import NIOCore
import ServiceLifecycle
import Testing

/// `NATSClient` as a swift-service-lifecycle `Service`: up while the group runs, drained on
/// graceful shutdown, closed on cancellation, and a fatal close reported to the group.
@Suite struct ServiceClientTests {
    static func isClosed(_ event: NATSEvent) -> Bool {
        if case .closed(nil) = event { return true }
        return false
    }

    /// The server logs (with `-D`) each client connection it closes, with the reason (its own
    /// readiness probe included). The reason is not counted: a close that finds the server's
    /// last PING unread is logged as a read error rather than "Client Closed", and both are the
    /// client going away.
    static func clientClosesSeen(by server: NATSServer) -> Int {
        server.logContents().components(separatedBy: "Client connection closed").count - 1
    }

    @Test func runsInAServiceGroupAndDrainsOnGracefulShutdown() async throws {
        let server = try await NATSServer.start(jetStream: false, arguments: ["-D"])
        let client = try NATSClient(options: NATSClientOptions(servers: [server.url]))
        let events = EventRecorder(client)
        let group = ServiceGroup(services: [client], logger: Logger(label: "natswire-test"))

        let running = Task { try await group.run() }
        try await waitFor(timeout: .seconds(15), "run() connects the client") { client.isConnected }
        let sub = try await client.subscribe(to: "svc.work")
        try await client.publish("job", to: "svc.work")
        try await client.flush()
        let closesBefore = Self.clientClosesSeen(by: server)

        await group.triggerGracefulShutdown()
        // Draining: what was routed before the shutdown is still there for the consumer, and
        // the drain waits for it to be taken.
        let messages = try await collect(sub, count: 1)
        #expect(messages.map(\.string) == ["job"])
        try await withTimeLimit(.seconds(10), "the service group to end after graceful shutdown") { try await running.value }
        #expect(!client.isConnected)
        try await events.waitFor("closed", Self.isClosed)
        try await waitFor(timeout: .seconds(5), "the server sees the client close") {
            Self.clientClosesSeen(by: server) > closesBefore
        }
        await #expect(throws: NATSError.connectionClosed) { try await client.publish("late", to: "svc.work") }
    }

    @Test func cancellingTheServiceClosesTheClient() async throws {
        let server = try await NATSServer.start(jetStream: false)
        let client = try NATSClient(options: NATSClientOptions(servers: [server.url]))
        let run = Task { try await client.run() }
        try await waitFor(timeout: .seconds(15), "run() connects the client") { client.isConnected }
        run.cancel()
        try await withTimeLimit(.seconds(10), "run() to return after cancellation") { try await run.value }
        #expect(!client.isConnected)
        await #expect(throws: NATSError.connectionClosed) { try await client.publish("late", to: "svc.work") }
    }

    @Test func runReturnsWhenTheClientIsClosedElsewhere() async throws {
        let server = try await NATSServer.start(jetStream: false)
        let client = try NATSClient(options: NATSClientOptions(servers: [server.url]))
        try await client.connect()  // run() accepts a client connected beforehand
        let run = Task { try await client.run() }
        try await Task.sleep(for: .milliseconds(50))
        await client.close()
        try await withTimeLimit(.seconds(10), "run() to return after close()") { try await run.value }
    }

    @Test func runThrowsWhenTheClientGivesUp() async throws {
        let server = try await NATSServer.start(jetStream: false)
        var options = NATSClientOptions(servers: [server.url])
        options.reconnectWait = .milliseconds(20)
        options.maxReconnectAttempts = 1
        let client = try NATSClient(options: options)
        let run = Task { try await client.run() }
        try await waitFor(timeout: .seconds(15), "run() connects the client") { client.isConnected }
        server.stop()
        let outcome = try await withTimeLimit(.seconds(10), "run() to end once reconnecting gave up") {
            await run.result
        }
        guard case .failure(NATSError.Code.connectionFailed) = outcome else {
            Issue.record("expected connectionFailed, got \(outcome)")
            return
        }
    }
}
