#if canImport(Glibc)
import Glibc
#endif
import NATSTestSupport
import NATSWire
import NIOCore
import Testing

/// Drain, close, failed connects and operations on a closed client.
@Suite struct LifecycleClientTests {
    static func isClosed(_ event: NATSEvent) -> Bool {
        if case .closed = event { return true }
        return false
    }

    @Test func drainLetsTheConsumerFinishThenCloses() async throws {
        try await withNATSServer(jetStream: false) { server in
            let client = try await server.connectedClient()
            try await withConnectedClient(to: server) { publisher in
                let events = EventRecorder(client)
                let sub = try await client.subscribe(to: "drain.work")
                try await client.flush()

                let count = 50
                for index in 0..<count { try await publisher.publish("job \(index)", to: "drain.work") }
                try await publisher.flush()
                try await waitFor(timeout: .seconds(3), "all jobs delivered to the client") { sub.pendingMessages == count }

                // A slow consumer: it has started, but most jobs are still waiting when drain begins.
                let processed = Recorded<String>()
                let consumer = Task {
                    for await message in sub {
                        processed.append(message.string)
                        try? await Task.sleep(for: .milliseconds(10))
                    }
                    return processed.count
                }
                try await waitFor(timeout: .seconds(2), "the consumer started") { processed.count > 0 }
                #expect(processed.count < count)

                try await client.drain(timeout: .seconds(5))
                #expect(!client.isConnected)

                // The consumer still gets every job, then the sequence ends by itself.
                let total = try await withTimeLimit(.seconds(5), "the consumer to finish") { await consumer.value }
                #expect(total == count)
                #expect(processed.all == (0..<count).map { "job \($0)" })

                // Closed after draining.
                try await events.waitFor("closed", Self.isClosed)
                #expect(events.all.last == .closed(error: nil))
                await #expect(throws: NATSError.connectionClosed) { try await client.publish("late", to: "drain.work") }
                await #expect(throws: NATSError.connectionClosed) { try await client.drain() }
            }
        }
    }

    /// A queue member that leaves by draining its subscription loses none of the messages the
    /// server already routed to it: between the two members every message arrives once.
    @Test func aDrainedQueueSubscriptionLosesNothing() async throws {
        try await withNATSServer(jetStream: false) { server in
            try await withConnectedClient(to: server) { publisher in
                try await withConnectedClient(to: server) { first in
                    try await withConnectedClient(to: server) { second in
                        let leaving = try await first.subscribe(to: "work.items", queue: "workers")
                        let staying = try await second.subscribe(to: "work.items", queue: "workers")
                        try await first.flush()
                        try await second.flush()
                        let count = 20000
                        let counting = { (subscription: NATSSubscription) in
                            Task { var seen = 0; for await _ in subscription { seen += 1 }; return seen }
                        }
                        let left = counting(leaving), stayed = counting(staying)
                        // The member leaves while messages stream to it.
                        let publishing = Task {
                            for index in 0..<count { try await publisher.publish("\(index)", to: "work.items") }
                            try await publisher.flush()
                        }
                        try await Task.sleep(for: .milliseconds(5))
                        try await leaving.drain()
                        try await publishing.value
                        try await second.flush()
                        try await Task.sleep(for: .milliseconds(200))
                        try await staying.unsubscribe()
                        let (a, b) = (await left.value, await stayed.value)
                        #expect(a + b == count, "first \(a), second \(b)")
                        #expect(a > 0 && a < count)
                    }
                }
            }
        }
    }

    @Test func drainEndsTheSubscriptionAndStopsDeliveries() async throws {
        try await withNATSServer(jetStream: false) { server in
            let client = try await server.connectedClient()
            try await withConnectedClient(to: server) { publisher in
                let sub = try await client.subscribe(to: "drain.stop")
                try await client.flush()
                let consumer = Task {
                    var received: [String] = []
                    for await message in sub { received.append(message.string) }
                    return received
                }
                try await publisher.publish("before", to: "drain.stop")
                try await publisher.flush()

                try await client.drain(timeout: .seconds(3))
                try await publisher.publish("after", to: "drain.stop")
                try await publisher.flush()
                let received = try await withTimeLimit(.seconds(3), "the subscription to end") { await consumer.value }
                #expect(received == ["before"])
            }
        }
    }

    @Test func drainTimesOutWhenNobodyConsumesButStillCloses() async throws {
        try await withNATSServer(jetStream: false) { server in
            let client = try await server.connectedClient()
            let events = EventRecorder(client)
            let sub = try await client.subscribe(to: "drain.unconsumed")
            try await client.publish("never read", to: "drain.unconsumed")
            try await client.flush()
            try await waitFor(timeout: .seconds(2), "delivered") { sub.pendingMessages == 1 }

            let (result, elapsed) = await timed { try await client.drain(timeout: .milliseconds(300)) }
            #expect(throws: NATSError.timeout(operation: "drain", seconds: 0.3)) { try result.get() }
            #expect(elapsed < .seconds(10))
            #expect(!client.isConnected)
            try await events.waitFor("closed", Self.isClosed)
            // The message is still there for a late consumer, then the sequence ends.
            let late = try await withTimeLimit(.seconds(2), "the subscription to end") {
                var received: [String] = []
                for await message in sub { received.append(message.string) }
                return received
            }
            #expect(late == ["never read"])
        }
    }

    @Test func drainSendsBufferedPublishesAndWaitsForPendingRequests() async throws {
        try await withNATSServer(jetStream: false) { server in
            let client = try await server.connectedClient()
            try await withConnectedClient(to: server) { other in
                let sink = try await other.subscribe(to: "drain.out")
                let service = try await other.subscribe(to: "drain.svc")
                try await other.flush()
                // A responder that answers after 300 ms.
                let seen = Recorded<String>()
                let responder = Task {
                    for await message in service {
                        seen.append(message.string)
                        try? await Task.sleep(for: .milliseconds(300))
                        if let reply = message.replyTo { try? await other.publish("late answer", to: reply) }
                    }
                }
                defer { responder.cancel() }

                let request = Task { try await client.request("q", to: "drain.svc", timeout: .seconds(3)) }
                try await waitFor(timeout: .seconds(2), "the request reaches the service") { seen.count == 1 }
                for index in 0..<100 { try await client.publish("\(index)", to: "drain.out") }
                try await client.drain(timeout: .seconds(3))

                #expect(try await request.value.string == "late answer")
                let out = try await collect(sink, count: 100, within: 3)
                #expect(out.map(\.string) == (0..<100).map { "\($0)" })
            }
        }
    }

    @Test func closeFailsAPendingRequest() async throws {
        try await withNATSServer(jetStream: false) { server in
            let client = try await server.connectedClient()
            try await withConnectedClient(to: server) { silent in
                let service = try await silent.subscribe(to: "close.svc")
                try await silent.flush()

                let request = Task { try await client.request("pending", to: "close.svc", timeout: .seconds(30)) }
                _ = try await collect(service, count: 1)  // the request is in flight
                let (result, elapsed) = await timed {
                    await client.close()
                    return try await request.value
                }
                #expect(throws: NATSError.connectionClosed) { try result.get() }
                #expect(elapsed < .seconds(10), "the pending request ended after \(elapsed)")
            }
        }
    }

    @Test func closeEndsSubscriptionsAndEmitsClosed() async throws {
        try await withNATSServer(jetStream: false) { server in
            let client = try await server.connectedClient()
            let events = EventRecorder(client)
            let sub = try await client.subscribe(to: "close.sub")
            try await client.flush()
            await client.close()
            let received = try await withTimeLimit(.seconds(2), "the subscription to end") {
                var count = 0
                for await _ in sub { count += 1 }
                return count
            }
            #expect(received == 0)
            try await events.waitFor("closed", Self.isClosed)
            #expect(events.all.filter(Self.isClosed) == [.closed(error: nil)])
            // Closing twice is harmless and emits nothing more.
            await client.close()
            try await Task.sleep(for: .milliseconds(50))
            #expect(events.all.filter(Self.isClosed).count == 1)
            // A new events() stream on a closed client ends at once.
            var after: [NATSEvent] = []
            for await event in client.events() { after.append(event) }
            #expect(after.isEmpty)
        }
    }

    @Test func connectingToAPortWithoutServerFails() async throws {
        let reserved = try ReservedPort()  // bound, never listening: connections are refused
        let port = reserved.port
        var options = NATSClientOptions(servers: ["nats://127.0.0.1:\(port)"])
        options.connectTimeout = .seconds(30)
        let client = try NATSClient(options: options)
        let (result, elapsed) = await timed { try await client.connect() }
        let error = #expect(throws: NATSError.self) { try result.get() }
        guard let failure = error, failure.code == .connectionFailed, let reason = failure.reason else {
            Issue.record("expected connectionFailed, got \(String(describing: error))")
            return
        }
        #expect(failure.servers == ["nats://127.0.0.1:\(port)"])
        #expect(!reason.isEmpty)
        #expect(error!.description.contains("127.0.0.1:\(port)"), "description: \(error!.description)")
        #expect(elapsed < .seconds(10))
        // The failed client is closed for good.
        await #expect(throws: NATSError.connectionClosed) { try await client.connect() }
        await #expect(throws: NATSError.connectionClosed) { try await client.publish("x", to: "y") }
    }

    @Test func connectTimesOutWhenTheServerNeverGreets() async throws {
        try await withNATSServer(jetStream: false) { server in
            // Freeze our own server process: TCP connects (the kernel accepts), but no INFO comes.
            let pid = try #require(server.pid)
            kill(pid, SIGSTOP)
            defer { kill(pid, SIGCONT) }
            var options = NATSClientOptions(servers: [server.url])
            options.connectTimeout = .milliseconds(300)
            let client = try NATSClient(options: options)
            let (result, elapsed) = await timed { try await client.connect() }
            let error = try #require(#expect(throws: NATSError.self) { try result.get() })
            guard error.code == .connectionFailed, let reason = error.reason else {
                Issue.record("expected connectionFailed naming the server, got \(error)")
                return
            }
            #expect(error.servers == [server.url])
            #expect(reason.contains("timed out"), "reason: \(reason)")
            #expect(error.description.contains("127.0.0.1:\(server.port)"), "error: \(error)")
            #expect(elapsed >= .milliseconds(250) && elapsed < .seconds(10), "took \(elapsed)")
        }
    }

    @Test func connectTriesEveryServerOfTheList() async throws {
        try await withNATSServer(jetStream: false) { server in
            let dead = try ReservedPort(), dead2 = try ReservedPort()  // bound, never listening
            let deadPort = dead.port
            let client = try await {
                var options = NATSClientOptions(servers: ["nats://127.0.0.1:\(deadPort)", server.url])
                options.connectTimeout = .seconds(2)
                let client = try NATSClient(options: options)
                try await client.connect()
                return client
            }()
            #expect(client.connectedServer == server.url)
            await client.close()

            let deadPort2 = dead2.port
            let failing = try NATSClient(url: "nats://127.0.0.1:\(deadPort),nats://127.0.0.1:\(deadPort2)")
            let error = await #expect(throws: NATSError.self) { try await failing.connect() }
            guard let failure = error, failure.code == .connectionFailed else {
                Issue.record("expected connectionFailed, got \(String(describing: error))")
                return
            }
            #expect(failure.servers == ["nats://127.0.0.1:\(deadPort)", "nats://127.0.0.1:\(deadPort2)"])
        }
    }

    @Test func operationsOnAClosedClientThrow() async throws {
        try await withNATSServer(jetStream: false) { server in
            let client = try await server.connectedClient()
            await client.close()
            #expect(!client.isConnected)
            #expect(client.connectedServer == nil)
            await #expect(throws: NATSError.connectionClosed) { try await client.flush() }
            await #expect(throws: NATSError.connectionClosed) { try await client.publish("x", to: "closed") }
            await #expect(throws: NATSError.connectionClosed) { try await client.subscribe(to: "closed") }
            await #expect(throws: NATSError.connectionClosed) { try await client.request("x", to: "closed", timeout: .seconds(1)) }
            await #expect(throws: NATSError.connectionClosed) { try await client.drain() }
        }
    }
}
