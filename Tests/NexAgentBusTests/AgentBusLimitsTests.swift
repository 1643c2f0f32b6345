import Foundation
import NATSTestSupport
import NATSWire
import NexAgentBus
import NIOCore
import Synchronization
import Testing

/// Attacks on the bus's memory and on other agents' share of it, each performed for real
/// over TCP, with the safe outcome asserted.
@Suite struct AgentBusLimitsTests {
    /// 50 local connections each send a 1 MiB PUB before CONNECT (all but its last byte): each
    /// is refused on its control line and closed, and the bus never holds their bodies. Before
    /// the fix 300 such connections grew the process by 326 MiB and stayed open.
    @Test func publishingBeforeConnectIsRefusedWithoutBufferingTheBody() async throws {
        var limits = BusLimits()
        limits.authTimeout = .seconds(60)  // what closes them must be the refusal, not the timeout
        try await withTestBus(limits: limits) { test in
            let rssBefore = residentBytes()
            var peakRSS = rssBefore

            // One frame shared by every sender (copy-on-write), so this process's RSS measures the bus;
            // one byte short, so a bus that waited for whole frames would hold each body open.
            var frame = ByteBuffer(string: "PUB hostint.a1.logs \(1024 * 1024)\r\n")
            frame.writeRepeatingByte(UInt8(ascii: "x"), count: 1024 * 1024 - 1)
            var attackers: [RawConnection] = []
            for _ in 0..<50 {
                let raw = try await RawConnection(port: test.bus.port)
                _ = try await raw.nonce()
                raw.sendWithoutWaiting(frame)
                attackers.append(raw)
                peakRSS = max(peakRSS, residentBytes())
            }
            for raw in attackers {
                try await raw.waitFor("-ERR 'Authorization Violation'")
                try await raw.waitUntilClosed()
                peakRSS = max(peakRSS, residentBytes())
            }
            // PING (or anything) before CONNECT is refused the same way.
            let pinger = try await RawConnection(port: test.bus.port)
            _ = try await pinger.nonce()
            try await pinger.send("PING\r\nPING\r\n")
            try await pinger.waitFor("-ERR 'Authorization Violation'")
            try await pinger.waitUntilClosed()
            #expect(!pinger.text.contains("PONG"))
            // A control line that never ends is cut off at the control-line limit.
            let endless = try await RawConnection(port: test.bus.port)
            _ = try await endless.nonce()
            endless.sendWithoutWaiting(ByteBuffer(string: "PUB hostint.a1.logs " + String(repeating: "y", count: 64 * 1024)))
            try await endless.waitFor("-ERR")
            try await endless.waitUntilClosed()

            let statistics = await test.bus.statistics()
            print("pre-auth flood: RSS \(rssBefore / 1024) KiB before, \(peakRSS / 1024) KiB peak; bus \(statistics)")
            #expect(statistics.closedBeforeAuthentication >= 51)
            // At most a control line per connection was ever held, never a body.
            #expect(statistics.peakBufferedInputBytes <= 52 * (limits.maxControlLine + 2), "\(statistics)")
            #expect(statistics.bufferedInputBytes == 0)
            #expect(statistics.connections == 0)
            // The agents still get in.
            let agent = try await test.connectAgent("a1")
            await agent.close()
        }
    }

    /// A local user holds 300 connections open without authenticating: at most
    /// `maxUnauthenticatedConnections` of them stay open (the oldest go first), and an agent
    /// still connects, authenticates and is answered.
    @Test func connectionsHeldOpenWithoutAuthenticatingDoNotKeepAgentsOut() async throws {
        var limits = BusLimits()
        limits.authTimeout = .seconds(60)  // what closes them must be the cap, not the timeout
        limits.maxUnauthenticatedConnections = 32
        try await withTestBus(agents: ["a7"], limits: limits) { test in
            let node = try await test.connectNode()
            try await withTeardown({ await node.close() }) {
                let server = try await answerOK(on: "hostint.a7.rpc", with: node)
                defer { server.cancel() }

                var holders: [RawConnection] = []
                for _ in 0..<300 {
                    let raw = try await RawConnection(port: test.bus.port)
                    holders.append(raw)
                }
                let held = await test.bus.statistics()
                #expect(held.connections - held.authenticatedConnections <= 32, "\(held)")
                #expect(held.unauthenticatedEvicted >= 250, "\(held)")  // (the last few may still be arriving)

                let agent = try await test.connectAgent("a7")
                try await withTeardown({ await agent.close() }) {
                    let reply = try await agent.request("hi", to: "hostint.a7.rpc", timeout: .seconds(5))
                    #expect(String(buffer: reply.payload) == "ok")
                    _ = holders
                }
            }
        }
    }

    /// A client sends PINGs and never reads the PONGs: it is closed once its queue passes the
    /// limit, and another agent goes on being answered.
    @Test func aClientThatNeverReadsItsPongsIsClosed() async throws {
        var limits = BusLimits()
        limits.maxPendingBytes = 64 * 1024
        limits.authTimeout = .seconds(30)  // a busy machine must not fail the handshake
        try await withTestBus(limits: limits) { test in
            let node = try await test.connectNode()
            let other = try await test.connectAgent("a2")
            try await withTeardown({ await node.close(); await other.close() }) {
                let server = try await answerOK(on: "hostint.a2.rpc", with: node)
                defer { server.cancel() }

                let deaf = try await RawConnection(port: test.bus.port, autoRead: false)
                deaf.readOnce()
                try await deaf.authenticate(test.agents["a1"]!)
                let pings = ByteBuffer(string: String(repeating: "PING\r\n", count: 100_000))  // 600 kB of PONGs each
                var sent = 0
                while deaf.isOpen && sent < 200 {  // up to 120 MB of PONGs: far past any socket buffer
                    deaf.sendWithoutWaiting(pings)
                    sent += 1
                    let answer = try await other.request("x", to: "hostint.a2.rpc", timeout: .seconds(2))
                    #expect(answer.string == "ok")
                    if sent % 10 == 0 { try await Task.sleep(for: .milliseconds(20)) }
                }
                try await deaf.waitUntilClosed()
                let statistics = await test.bus.statistics()
                print("PONG flood: closed after \(sent) batches of 100,000 PINGs; bus \(statistics)")
                #expect(statistics.slowConsumersClosed >= 1)
                #expect(statistics.pendingOutputBytes < 1024 * 1024, "\(statistics)")
                #expect(other.isConnected && node.isConnected)
                #expect(try await other.request("x", to: "hostint.a2.rpc", timeout: .seconds(2)).string == "ok")
            }
        }
    }

    /// One agent publishes as fast as it can: it is held to its byte rate, loses nothing,
    /// and another agent's requests are answered promptly meanwhile.
    @Test func aFloodingAgentIsThrottledWhileOthersAreAnswered() async throws {
        var limits = BusLimits()
        limits.publishBytesPerSecond = 2 * 1024 * 1024
        limits.publishBurstSeconds = 0.25
        limits.authTimeout = .seconds(30)  // a busy machine must not fail the handshake
        try await withTestBus(limits: limits) { test in
            let node = try await test.connectNode()
            let other = try await test.connectAgent("a2")
            try await withTeardown({ await node.close(); await other.close() }) {
                let received = Atomic<Int>(0)
                let logs = try await node.subscribe(to: "hostint.a1.logs")
                let counter = Task { for await _ in logs { received.add(1, ordering: .relaxed) } }
                defer { counter.cancel() }
                let server = try await answerOK(on: "hostint.a2.rpc", with: node)
                defer { server.cancel() }

                let flooder = try await RawConnection(port: test.bus.port)
                try await flooder.authenticate(test.agents["a1"]!, then: "PING\r\n")
                try await flooder.waitFor("PONG")
                let total = 10_000
                var flood = ByteBuffer()
                let line = String(repeating: "x", count: 1024)
                for _ in 0..<total { flood.writeString("PUB hostint.a1.logs 1024\r\n\(line)\r\n") }  // 10 MiB
                let started = ContinuousClock.now
                flooder.sendWithoutWaiting(flood)

                var slowest = Duration.zero
                while started.duration(to: .now) < .seconds(2) {
                    let asked = ContinuousClock.now
                    let answer = try await other.request("x", to: "hostint.a2.rpc", timeout: .seconds(2))
                    #expect(answer.string == "ok")
                    slowest = max(slowest, asked.duration(to: .now))
                    try await Task.sleep(for: .milliseconds(50))
                }
                let elapsed = Double(started.duration(to: .now).components.seconds)
                    + Double(started.duration(to: .now).components.attoseconds) / 1e18
                let got = received.load(ordering: .relaxed)
                // Burst + rate × time (10% slack for the clocks) + what NIO reads in the event in which
                // the budget ran out (up to four reads of 64 KiB), in messages of 1 KiB.
                let bound = Int((512 + 2_048 * elapsed) * 1.1) + 4 * 64
                let statistics = await test.bus.statistics()
                print("publish flood: \(got) of \(total) messages in \(elapsed) s (bound \(bound)); slowest other request \(slowest); bus \(statistics)")
                #expect(got <= bound, "the flooding agent was not held to its rate")
                #expect(got >= 2_000, "the flooding agent was stopped rather than slowed")
                #expect(statistics.publishThrottles >= 1)
                // Generous for a debug build on a busy machine (alone it is ~50 ms); without the limit
                // the other agent's requests queue behind the whole 10 MiB flood on the node's link.
                #expect(slowest < .seconds(1), "another agent's request waited behind the flood")
                // Nothing is dropped: all of it arrives, at the rate.
                try await waitFor(timeout: .seconds(20), "every flooded message") { received.load(ordering: .relaxed) == total }
                #expect(flooder.isOpen)
                await flooder.close()
            }
        }
    }

    /// The node's own connection stops reading while an agent floods it: the node is not cut
    /// off, the bus stops reading from the agent instead (its queue stays bounded), and once the
    /// node reads again every message arrives.
    @Test func theTrustedLinkIsNotCutOffWhenItLags() async throws {
        var limits = BusLimits()
        limits.maxPendingBytes = 256 * 1024
        limits.authTimeout = .seconds(30)  // a busy machine must not fail the handshake
        try await withTestBus(limits: limits) { test in
            let losses = test.bus.trustedLinkLosses()
            let lagging = try await RawConnection(port: test.bus.port, autoRead: false)
            lagging.readOnce()
            try await lagging.authenticate(test.node, then: "SUB hostint.> 1\r\n")
            let agent = try await test.connectAgent("a1")
            try await withTeardown({ await agent.close() }) {
                try await waitFor("both connected") { await test.bus.statistics().authenticatedConnections == 2 }

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
                print("lagging node link: peak pending \(peakPending) bytes; bus \(statistics)")
                #expect(lagging.isOpen)
                #expect(statistics.slowConsumersClosed == 0)
                #expect(statistics.connections == 2)
                // One 64 KiB read per publisher past the mark at most (plus the frame it completes).
                #expect(peakPending <= limits.maxPendingBytes + 2 * 1024 * 1024, "\(statistics)")

                try await lagging.startReading()
                let frame = "MSG hostint.a1.logs 1 65536\r\n".utf8.count + 65_536 + 2
                try await waitFor(timeout: .seconds(30), "every message to reach the node") {
                    lagging.receivedCount >= count * frame
                }
                try await publisher.value
                #expect(lagging.isOpen && agent.isConnected)
                #expect(await test.bus.statistics().slowConsumersClosed == 0)

                // When the link does close, the node hears of it.
                await lagging.close()
                var iterator = losses.makeAsyncIterator()
                let loss = try #require(await iterator.next())
                #expect(loss.publicKey == test.node.publicKey)
            }
        }
    }

    /// Only trusted connections are reported lost, and shutting the bus down reports none.
    @Test func onlyTheTrustedLinkIsReportedLost() async throws {
        let test = try await TestBus.start()
        let losses = test.bus.trustedLinkLosses()
        let agent = try await test.connectAgent("a1")
        let node = try await test.connectNode()
        let survivor = try await test.connectNode()
        await agent.close()
        await node.close()
        var iterator = losses.makeAsyncIterator()
        let loss = try #require(await iterator.next())
        #expect(loss.publicKey == test.node.publicKey)
        #expect(loss.description.contains(test.node.publicKey))
        await test.bus.shutdown()
        #expect(await iterator.next() == nil, "shutdown ends the stream without reporting the survivor")
        _ = survivor
    }

    @Test func aUserWithEverythingIsTrustedAndAnAgentNever() async throws {
        var limits = BusLimits()
        limits.maxPendingBytes = 64 * 1024
        let bus = try AgentBus(limits: limits)
        try await bus.start()
        try await withTeardown({ await bus.shutdown() }) {
            let explicit = try NKeyPair.generate(.user)
            await bus.addUser(publicKey: explicit.publicKey, permissions: .agent("a9"), isTrusted: false)
            let losses = bus.trustedLinkLosses()
            let raw = try await RawConnection(port: bus.port)
            try await raw.authenticate(explicit, then: "PING\r\n")
            try await raw.waitFor("PONG")
            await raw.close()
            let trusted = try NKeyPair.generate(.user)
            await bus.addUser(publicKey: trusted.publicKey, permissions: .everything)
            let link = try await RawConnection(port: bus.port)
            try await link.authenticate(trusted, then: "PING\r\n")
            try await link.waitFor("PONG")
            await link.close()
            var iterator = losses.makeAsyncIterator()
            #expect(await iterator.next()?.publicKey == trusted.publicKey, "the untrusted close is not reported")
        }
    }
}

/// This process's resident set size, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
