import NATSTestSupport
import NATSWire
import NexAgentBus
import NIOCore
import Synchronization
import Testing

/// The node's in-process link to the bus, against real agents connected over TCP.
@Suite struct BusLinkTests {
    @Test func requestsReachAnAgentAndItsAnswerComesBack() async throws {
        try await withTestBus { test in
            let link = try await test.bus.link()
            let agent = try await test.connectAgent("a1")
            let pings = try await agent.subscribe(to: "agentint.a1.>")
            try await agent.flush()
            let answering = Task {
                for await message in pings {
                    if let reply = message.replyTo {
                        try? await agent.publish(ByteBuffer(string: "pong:" + message.string), to: reply,
                                                 headers: ["x-from": "a1"])
                    }
                }
            }
            defer { answering.cancel() }
            for index in 0..<50 {
                let reply = try await link.request(ByteBuffer(string: "\(index)"), to: "agentint.a1.ping", timeout: .seconds(5))
                #expect(reply.string == "pong:\(index)")
                #expect(reply.headers?["x-from"] == "a1")
            }
            // Concurrent requests each get their own answer.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<32 {
                    group.addTask {
                        let reply = try await link.request(ByteBuffer(string: "c\(index)"), to: "agentint.a1.ping", timeout: .seconds(5))
                        #expect(reply.string == "pong:c\(index)")
                    }
                }
                try await group.waitForAll()
            }
            await agent.close()
        }
    }

    @Test func aRequestNobodyCanAnswerFailsAtOnceAndOneUnansweredTimesOut() async throws {
        try await withTestBus { test in
            let link = try await test.bus.link()
            let started = ContinuousClock.now
            await #expect(throws: NATSError.noResponders(subject: "agentint.nobody.ping")) {
                _ = try await link.request(ByteBuffer(), to: "agentint.nobody.ping", timeout: .seconds(10))
            }
            #expect(started.duration(to: .now) < .seconds(5))

            let agent = try await test.connectAgent("a1")
            let silent = try await agent.subscribe(to: "agentint.a1.>")
            try await agent.flush()
            await #expect(throws: NATSError.self) {
                _ = try await link.request(ByteBuffer(), to: "agentint.a1.ping", timeout: .milliseconds(200))
            }
            #expect(silent.pendingMessages + silent.droppedMessages <= 1)
            await agent.close()
        }
    }

    /// The link keeps one timer for all its requests: a short request made while a long one
    /// waits must still time out on time, and the long one must go on waiting.
    @Test func aShortRequestTimesOutOnTimeBesideALongOne() async throws {
        try await withTestBus { test in
            let link = try await test.bus.link()
            let agent = try await test.connectAgent("a1")
            _ = try await agent.subscribe(to: "agentint.a1.>")
            try await agent.flush()
            let long = Task { try await link.request(ByteBuffer(), to: "agentint.a1.ping", timeout: .seconds(60)) }
            try await Task.sleep(for: .milliseconds(50))
            let started = ContinuousClock.now
            await #expect(throws: NATSError.timeout(operation: "request to 'agentint.a1.ping'", seconds: 0.3)) {
                _ = try await link.request(ByteBuffer(), to: "agentint.a1.ping", timeout: .milliseconds(300))
            }
            let waited = started.duration(to: .now)
            #expect(waited >= .milliseconds(300) && waited < .seconds(5))
            // Still waiting: cancelled now, it ends as cancelled, not as timed out.
            long.cancel()
            await #expect(throws: CancellationError.self) { _ = try await long.value }
            await agent.close()
        }
    }

    @Test func aCancelledRequestEndsAtOnce() async throws {
        try await withTestBus { test in
            let link = try await test.bus.link()
            let agent = try await test.connectAgent("a1")
            _ = try await agent.subscribe(to: "agentint.a1.>")
            try await agent.flush()
            let waiting = Task { try await link.request(ByteBuffer(), to: "agentint.a1.ping", timeout: .seconds(60)) }
            try await Task.sleep(for: .milliseconds(100))
            let cancelled = ContinuousClock.now
            waiting.cancel()
            await #expect(throws: CancellationError.self) { _ = try await waiting.value }
            #expect(cancelled.duration(to: .now) < .seconds(5))
            await agent.close()
        }
    }

    /// Agent a2 sees the reply subject of a request made to a1 (it guesses or learns it) and
    /// answers first: the bus refuses it, and the link takes a1's answer.
    @Test func anotherAgentCannotAnswerForTheOneAsked() async throws {
        try await withTestBus { test in
            let link = try await test.bus.link()
            let asked = try await test.connectAgent("a1")
            let requests = try await asked.subscribe(to: "agentint.a1.>")
            try await asked.flush()
            let intruder = try await test.connectAgent("a2")
            let errors = ClientEvents(intruder)
            let answering = Task {
                for await message in requests {
                    guard let reply = message.replyTo else { continue }
                    try? await intruder.publish("forged", to: reply)
                    try? await intruder.flush()
                    try? await Task.sleep(for: .milliseconds(50))
                    try? await asked.publish("genuine", to: reply)
                }
            }
            defer { answering.cancel() }
            let reply = try await link.request(ByteBuffer(), to: "agentint.a1.deploy", timeout: .seconds(5))
            #expect(reply.string == "genuine")
            try await waitFor("the bus to refuse the forged answer") {
                !errors.permissionViolations.isEmpty
            }
            await asked.close()
            await intruder.close()
        }
    }

    @Test func invalidAndOversizedPublishesAreRefusedWithTheReason() async throws {
        var limits = BusLimits()
        limits.maxPayload = 1024
        try await withTestBus(limits: limits) { test in
            let link = try await test.bus.link()
            #expect(throws: NATSError.self) { try link.publish(ByteBuffer(), to: "has space") }
            #expect(throws: NATSError.self) { try link.publish(ByteBuffer(), to: "wild.*") }
            #expect(throws: NATSError.payloadTooLarge(size: 2048, maxPayload: 1024)) {
                try link.publish(ByteBuffer(repeating: 0, count: 2048), to: "agentint.a1.deploy")
            }
            await #expect(throws: NATSError.self) {
                _ = try await link.request(ByteBuffer(repeating: 0, count: 2048), to: "agentint.a1.deploy", timeout: .seconds(1))
            }
            await #expect(throws: NATSError.self) { _ = try await link.subscribe(to: "bad..pattern") }
            // The link still works.
            let agent = try await test.connectAgent("a1")
            let inbox = try await agent.subscribe(to: "agentint.a1.>")
            try await agent.flush()
            try link.publish(ByteBuffer(string: "ok"), to: "agentint.a1.deploy")
            var iterator = inbox.makeAsyncIterator()
            #expect(await iterator.next()?.string == "ok")
            await agent.close()
        }
    }

    /// The node stops reading its link while an agent floods it: the link is not cut off, the
    /// bus stops reading from the agent instead (what waits stays bounded), and once the node
    /// reads again every message arrives.
    @Test func theLinkIsNeverCutOffWhenItLags() async throws {
        var limits = BusLimits()
        limits.maxPendingBytes = 256 * 1024
        limits.authTimeout = .seconds(30)
        try await withTestBus(limits: limits) { test in
            let link = try await test.bus.link()
            let logs = try await link.subscribe(to: "hostint.>")  // not read yet
            let agent = try await test.connectAgent("a1")
            try await withTeardown({ await agent.close() }) {
                let count = 400
                let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)  // 25 MiB in all
                let publisher = Task {
                    for _ in 0..<count { try await agent.publish(chunk, to: "hostint.a1.logs") }
                    try await agent.flush(timeout: .seconds(60))
                }
                defer { publisher.cancel() }
                try await waitFor("the bus to pause the agent") { await test.bus.statistics().trustedBackpressurePauses >= 1 }
                var peakPending = 0
                for _ in 0..<20 {
                    peakPending = max(peakPending, await test.bus.statistics().pendingOutputBytes)
                    try await Task.sleep(for: .milliseconds(50))
                }
                let statistics = await test.bus.statistics()
                print("lagging node link: peak queued \(peakPending) bytes; bus \(statistics)")
                #expect(statistics.slowConsumersClosed == 0)
                #expect(agent.isConnected)
                // One 64 KiB read per publisher past the mark at most (plus the frame it completes).
                #expect(peakPending <= limits.maxPendingBytes + 2 * 1024 * 1024, "\(statistics)")

                var received = 0
                for await message in logs {
                    #expect(message.payload.readableBytes == 64 * 1024)
                    received += 1
                    if received == count { break }
                }
                #expect(received == count)
                try await publisher.value
                #expect(agent.isConnected)
                #expect(await test.bus.statistics().slowConsumersClosed == 0)
            }
        }
    }

    @Test func closingTheLinkOrTheBusEndsSubscriptionsAndPendingRequests() async throws {
        let test = try await TestBus.start()
        let link = try await test.bus.link()
        let agent = try await test.connectAgent("a1")
        _ = try await agent.subscribe(to: "agentint.a1.>")
        try await agent.flush()
        let subscription = try await link.subscribe(to: "hostint.>")
        let pending = Task { try await link.request(ByteBuffer(), to: "agentint.a1.ping", timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(100))
        await link.close()
        await #expect(throws: NATSError.connectionClosed) { _ = try await pending.value }
        var iterator = subscription.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        await #expect(throws: NATSError.self) { _ = try await link.subscribe(to: "hostint.>") }

        let second = try await test.bus.link()
        let held = try await second.subscribe(to: "hostint.>")
        await agent.close()
        await test.bus.shutdown()
        var heldIterator = held.makeAsyncIterator()
        #expect(await heldIterator.next() == nil)
        await #expect(throws: AgentBusError.shutDown) { _ = try await test.bus.link() }
    }
}
