#if canImport(Glibc)
import Glibc
#endif
import NATSTestSupport
import NATSWire
import NIOCore
import Testing

/// Losing the server and getting it back: buffered publishes, resumed subscriptions,
/// the reconnect buffer limit, and giving up.
@Suite struct ReconnectClientTests {
    static func isDisconnected(_ event: NATSEvent) -> Bool {
        if case .disconnected = event { return true }
        return false
    }

    static func isReconnected(_ event: NATSEvent) -> Bool {
        if case .reconnected = event { return true }
        return false
    }

    static func isClosed(_ event: NATSEvent) -> Bool {
        if case .closed = event { return true }
        return false
    }

    @Test func subscriptionsResumeAndBufferedPublishesArriveAfterRestart() async throws {
        try await withNATSServer(jetStream: false) { server in
            try await withConnectedClient(to: server, configure: { $0.maxReconnectAttempts = -1 }) { client in
                let events = EventRecorder(client)

                let plain = try await client.subscribe(to: "recon.plain")
                let queued = try await client.subscribe(to: "recon.queue", queue: "workers")
                let limited = try await client.subscribe(to: "recon.limited")
                try await limited.unsubscribe(after: 5)
                try await client.flush()

                // Before the outage: everything flows, and the limited one has had 2 of its 5.
                try await client.publish("before", to: "recon.plain")
                try await client.publish("before", to: "recon.queue")
                try await client.publish("l0", to: "recon.limited")
                try await client.publish("l1", to: "recon.limited")
                #expect(try await collect(plain, count: 1).map(\.string) == ["before"])
                #expect(try await collect(queued, count: 1).map(\.string) == ["before"])
                #expect(try await collect(limited, count: 2).map(\.string) == ["l0", "l1"])

                server.stop()
                try await events.waitFor("disconnected", Self.isDisconnected)
                #expect(!client.isConnected)

                // Publishes while down are kept and sent after reconnecting.
                for index in 0..<5 {
                    try await client.publish("buffered-\(index)", to: "recon.plain")
                    try await client.publish("buffered-\(index)", to: "recon.queue")
                }
                await #expect(throws: NATSError.disconnected) { try await client.flush() }

                try await server.restart()
                let reconnected = try await events.waitFor("reconnected", timeout: .seconds(15), Self.isReconnected)
                #expect(reconnected == .reconnected(server: server.url))
                #expect(client.isConnected)

                let plainBuffered = try await collect(plain, count: 5, within: 5)
                #expect(plainBuffered.map(\.string) == (0..<5).map { "buffered-\($0)" })
                let queueBuffered = try await collect(queued, count: 5, within: 5)
                #expect(queueBuffered.map(\.string) == (0..<5).map { "buffered-\($0)" })

                // The subscriptions are live on the new connection, the queue group too.
                try await client.publish("after", to: "recon.plain")
                try await client.publish("after", to: "recon.queue")
                #expect(try await collect(plain, count: 1).map(\.string) == ["after"])
                #expect(try await collect(queued, count: 1).map(\.string) == ["after"])

                // The auto-unsubscribe one gets exactly the 3 it still had, then ends.
                for index in 2..<12 { try await client.publish("l\(index)", to: "recon.limited") }
                try await client.flush()
                let rest = try await withTimeLimit(.seconds(5), "the limited subscription to end") {
                    var received: [String] = []
                    for await message in limited { received.append(message.string) }
                    return received
                }
                #expect(rest == ["l2", "l3", "l4"])

                // Event order: disconnected, then reconnected.
                let disconnectedAt = try #require(events.firstIndex(Self.isDisconnected))
                let reconnectedAt = try #require(events.firstIndex(Self.isReconnected))
                #expect(disconnectedAt < reconnectedAt)
                #expect(!events.all.contains(where: Self.isClosed))
            }
        }
    }

    @Test func requestMadeWhileDisconnectedIsAnsweredAfterReconnect() async throws {
        try await withNATSServer(jetStream: false) { server in
            try await withConnectedClient(to: server, configure: { $0.maxReconnectAttempts = -1 }) { client in
                let events = EventRecorder(client)
                // The responder lives on the same client, so its SUB, the inbox SUB and the buffered
                // request all reach the new server in that order.
                let service = try await client.subscribe(to: "recon.svc")
                let responder = Task {
                    for await message in service {
                        if let reply = message.replyTo { try? await client.publish("answer:" + message.string, to: reply) }
                    }
                }
                defer { responder.cancel() }
                #expect(try await client.request("first", to: "recon.svc", timeout: .seconds(2)).string == "answer:first")

                server.stop()
                try await events.waitFor("disconnected", Self.isDisconnected)
                let pending = Task { try await client.request("while down", to: "recon.svc", timeout: .seconds(8)) }
                try await Task.sleep(for: .milliseconds(100))
                try await server.restart()
                try await events.waitFor("reconnected", Self.isReconnected)
                let reply = try await withTimeLimit(.seconds(5), "the buffered request's reply") { try await pending.value }
                #expect(reply.string == "answer:while down")
            }
        }
    }

    @Test func unsubscribingWhileDisconnectedTakesEffectAfterReconnect() async throws {
        try await withNATSServer(jetStream: false) { server in
            try await withConnectedClient(to: server, configure: { $0.maxReconnectAttempts = -1 }) { client in
                let events = EventRecorder(client)
                let limited = try await client.subscribe(to: "recon.unsub.limited")
                let gone = try await client.subscribe(to: "recon.unsub.gone")
                let watcher = try await client.subscribe(to: "recon.unsub.>")
                try await client.flush()

                server.stop()
                try await events.waitFor("disconnected", Self.isDisconnected)
                try await limited.unsubscribe(after: 2)
                try await gone.unsubscribe()
                try await server.restart()
                try await events.waitFor("reconnected", Self.isReconnected)

                for index in 0..<5 {
                    try await client.publish("\(index)", to: "recon.unsub.limited")
                    try await client.publish("\(index)", to: "recon.unsub.gone")
                }
                // The watcher proves all ten were routed before we look at the others.
                _ = try await collect(watcher, count: 10, within: 3)
                let limitedGot = try await withTimeLimit(.seconds(3), "the limited subscription to end") {
                    var received: [String] = []
                    for await message in limited { received.append(message.string) }
                    return received
                }
                #expect(limitedGot == ["0", "1"])
                let goneGot = try await withTimeLimit(.seconds(3), "the unsubscribed subscription to end") {
                    var received: [String] = []
                    for await message in gone { received.append(message.string) }
                    return received
                }
                #expect(goneGot.isEmpty)
            }
        }
    }

    @Test func queueGroupMembersOnTwoClientsBothResume() async throws {
        try await withNATSServer(jetStream: false) { server in
            let a = try await server.connectedClient { $0.maxReconnectAttempts = -1 }
            let b = try await server.connectedClient { $0.maxReconnectAttempts = -1 }
            try await withTeardown({ await a.close(); await b.close() }) {
                let eventsA = EventRecorder(a)
                let eventsB = EventRecorder(b)
                let subA = try await a.subscribe(to: "recon.work", queue: "q")
                let subB = try await b.subscribe(to: "recon.work", queue: "q")
                try await a.flush()
                try await b.flush()

                server.stop()
                try await server.restart()
                try await eventsA.waitFor("A reconnected", Self.isReconnected)
                try await eventsB.waitFor("B reconnected", Self.isReconnected)
                try await a.flush()
                try await b.flush()

                for index in 0..<200 { try await a.publish("\(index)", to: "recon.work") }
                try await a.flush()
                try await waitFor(timeout: .seconds(3), "200 messages shared by the group") {
                    subA.pendingMessages + subB.pendingMessages == 200
                }
                #expect(subA.pendingMessages > 0 && subB.pendingMessages > 0,
                        "A got \(subA.pendingMessages), B got \(subB.pendingMessages)")
            }
        }
    }

    @Test func reconnectBufferLimitIsEnforced() async throws {
        try await withNATSServer(jetStream: false) { server in
            let client = try await server.connectedClient {
                $0.maxReconnectAttempts = -1
                $0.reconnectBufferSize = 1024
            }
            try await withTeardown({ await client.close() }) {
                let events = EventRecorder(client)
                let sub = try await client.subscribe(to: "recon.buffer")
                try await client.flush()

                server.stop()
                try await events.waitFor("disconnected", Self.isDisconnected)

                let payload = String(repeating: "x", count: 100)
                var accepted = 0
                var failure: (any Error)?
                for _ in 0..<100 {
                    do {
                        try await client.publish(payload, to: "recon.buffer")
                        accepted += 1
                    } catch {
                        failure = error
                        break
                    }
                }
                #expect(failure as? NATSError == .reconnectBufferFull(limit: 1024), "got \(String(describing: failure))")
                #expect(accepted > 0 && accepted * 100 <= 1024, "accepted \(accepted) messages of 100 bytes")
                // Still full: another one is refused too, a tiny one too big for the rest as well.
                await #expect(throws: NATSError.reconnectBufferFull(limit: 1024)) {
                    try await client.publish(payload, to: "recon.buffer")
                }

                // What was accepted is delivered after the reconnect, and publishing works again.
                try await server.restart()
                try await events.waitFor("reconnected", Self.isReconnected)
                let delivered = try await collect(sub, count: accepted, within: 5)
                #expect(delivered.count == accepted)
                #expect(delivered.allSatisfy { $0.string == payload })
                try await client.publish("again", to: "recon.buffer")
                #expect(try await collect(sub, count: 1).first?.string == "again")
            }
        }
    }

    @Test func givesUpAfterMaxReconnectAttempts() async throws {
        try await withNATSServer(jetStream: false) { server in
            let client = try await server.connectedClient { $0.maxReconnectAttempts = 2 }
            let events = EventRecorder(client)
            let sub = try await client.subscribe(to: "gone")
            try await client.flush()

            server.stop()
            let closed = try await events.waitFor("closed", timeout: .seconds(20), Self.isClosed)
            guard case .closed(let error?) = closed, error.code == .connectionFailed, let reason = error.reason else {
                Issue.record("expected closed(connectionFailed), got \(closed)")
                return
            }
            #expect(error.servers == [server.url])
            #expect(reason.contains("2 reconnect"), "reason: \(reason)")

            let disconnectedAt = try #require(events.firstIndex(Self.isDisconnected))
            let closedAt = try #require(events.firstIndex(Self.isClosed))
            #expect(disconnectedAt < closedAt)
            #expect(!events.all.contains(where: Self.isReconnected))
            try await waitFor(timeout: .seconds(1), "the event stream ends") { events.streamEnded }

            #expect(!client.isConnected)
            await #expect(throws: NATSError.connectionClosed) { try await client.publish("late", to: "gone") }
            await #expect(throws: NATSError.connectionClosed) { try await client.flush() }
            await #expect(throws: NATSError.connectionClosed) { try await client.subscribe(to: "gone.again") }
            // The subscription ended with the client.
            let leftover = try await withTimeLimit(.seconds(2), "the subscription to end") {
                var count = 0
                for await _ in sub { count += 1 }
                return count
            }
            #expect(leftover == 0)
            await client.close()
        }
    }

    @Test func closeWhileReconnectingStopsTheClient() async throws {
        try await withNATSServer(jetStream: false) { server in
            let client = try await server.connectedClient { $0.maxReconnectAttempts = -1 }
            let events = EventRecorder(client)
            server.stop()
            try await events.waitFor("disconnected", Self.isDisconnected)
            let (_, elapsed) = await timed { await client.close() }
            #expect(elapsed < .seconds(10))
            let closed = try await events.waitFor("closed", Self.isClosed)
            #expect(closed == .closed(error: nil))
            // The server coming back does not revive a closed client.
            try await server.restart()
            try await Task.sleep(for: .milliseconds(400))
            #expect(!client.isConnected)
            #expect(!events.all.contains(where: Self.isReconnected))
        }
    }

    @Test func staleConnectionIsDetectedAndRecovered() async throws {
        try await withNATSServer(jetStream: false) { server in
            let client = try await server.connectedClient {
                $0.maxReconnectAttempts = -1
                $0.pingInterval = .milliseconds(100)
                $0.maxPingsOutstanding = 2
                $0.connectTimeout = .milliseconds(500)
            }
            try await withTeardown({ await client.close() }) {
                let events = EventRecorder(client)
                let sub = try await client.subscribe(to: "stale.sub")
                try await client.flush()

                // Freeze the server (our own child process): the socket stays open, PINGs go unanswered.
                let pid = try #require(server.pid)
                kill(pid, SIGSTOP)
                defer { kill(pid, SIGCONT) }
                try await events.waitFor("staleConnection error", timeout: .seconds(3)) { $0 == .error(.staleConnection) }
                let disconnected = try await events.waitFor("disconnected", timeout: .seconds(2), Self.isDisconnected)
                #expect(disconnected == .disconnected(error: .staleConnection), "the disconnect reason should be the stale connection")
                try await client.publish("while frozen", to: "stale.sub")

                kill(pid, SIGCONT)
                try await events.waitFor("reconnected", timeout: .seconds(15), Self.isReconnected)
                let received = try await collect(sub, count: 1, within: 3)
                #expect(received.map(\.string) == ["while frozen"])
            }
        }
    }

    @Test func lameDuckModeIsReported() async throws {
        let server = try await NATSServer.start(
            config: "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"5s\"\n", jetStream: false)
        try await withConnectedClient(to: server, configure: { $0.maxReconnectAttempts = 1 }) { client in
            let events = EventRecorder(client)
            try await client.flush()

            let pid = try #require(server.pid)
            kill(pid, SIGUSR2)  // lame-duck mode, for our own child process
            let event = try await events.waitFor("lameDuck", timeout: .seconds(3)) { event in
                if case .lameDuck = event { return true }
                return false
            }
            #expect(event == .lameDuck(server: server.url))
            #expect(client.isConnected)
            // In lame-duck mode the server ignores SIGTERM until its duration ends; end our child now.
            kill(pid, SIGKILL)
            server.stop()
        }
    }

    @Test func failsOverToAnotherClusterMemberAndLearnsServers() async throws {
        let (a, b) = try await Self.startCluster()
        // A client that only knows A; B is learned from A's INFO once the route is up.
        var options = NATSClientOptions(servers: [a.url])
        options.reconnectWait = .milliseconds(50)
        options.maxReconnectWait = .milliseconds(200)
        options.maxReconnectAttempts = -1
        let client = try NATSClient(options: options)
        let events = EventRecorder(client)
        try await client.connect()
        try await withTeardown({ await client.close() }) {
            try await waitFor(timeout: .seconds(5), "B learned from connect_urls: \(client.knownServers)") {
                client.knownServers.contains(b.url)
            }
            let sub = try await client.subscribe(to: "cluster.sub")
            try await client.flush()

            a.stop()
            let reconnected = try await events.waitFor("reconnected", timeout: .seconds(15), Self.isReconnected)
            #expect(reconnected == .reconnected(server: b.url))
            #expect(client.connectedServer == b.url)

            // Published on B by another client; the subscription was re-created on B.
            try await withConnectedClient(to: b) { other in
                try await other.publish("via b", to: "cluster.sub")
                #expect(try await collect(sub, count: 1, within: 3).map(\.string) == ["via b"])
                #expect(events.all.contains { event in
                    if case .serversDiscovered(let servers) = event { return servers.contains(b.url) }
                    return false
                })
            }
        }
    }

    /// Two routed servers, A and B (``NATSCluster``).
    static func startCluster(extra: String = "") async throws -> (NATSServer, NATSServer) {
        let cluster = try await NATSCluster.start(size: 2, jetStream: false, extra: extra, name: "natswire-test")
        return (cluster.servers[0], cluster.servers[1])
    }

    @Test func failoverToADiscoveredServerKeepsTheURLCredentials() async throws {
        let (a, b) = try await Self.startCluster(
            extra: #"authorization { users: [{user: alice, password: "s3cret"}] }"#)
        // Credentials only in the URL of A; B is discovered (connect_urls carry no credentials).
        var options = NATSClientOptions(servers: ["nats://alice:s3cret@127.0.0.1:\(a.port)"])
        options.reconnectWait = .milliseconds(50)
        options.maxReconnectWait = .milliseconds(200)
        options.maxReconnectAttempts = -1
        let client = try NATSClient(options: options)
        let events = EventRecorder(client)
        try await client.connect()
        try await withTeardown({ await client.close() }) {
            try await waitFor(timeout: .seconds(5), "B learned from connect_urls: \(client.knownServers)") {
                client.knownServers.contains(b.url)
            }

            a.stop()
            let reconnected = try await events.waitFor("reconnected to B", timeout: .seconds(15), Self.isReconnected)
            #expect(reconnected == .reconnected(server: b.url))
        }
    }
}
