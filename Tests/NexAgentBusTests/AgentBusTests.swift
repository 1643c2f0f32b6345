import Foundation
import NATSTestSupport
import NATSWire
import NexAgentBus
import NIOCore
import Testing

@Suite struct AgentBusTests {
    @Test(arguments: ["0.0.0.0", "192.168.1.10", "localhost", "::", "10.0.0.1", "127.0.0.256", "127.1"])
    func nonLoopbackAddressesAreRefused(host: String) throws {
        #expect(throws: AgentBusError.notLoopback(host: host)) { try AgentBus(host: host) }
        let error = AgentBusError.notLoopback(host: host)
        #expect(error.description.contains("loopback") && error.description.contains(host))
    }

    @Test func listensOnLoopbackOnly() async throws {
        let bus = try AgentBus(host: "127.0.0.1")
        try await bus.start()
        try await withTeardown({ await bus.shutdown() }) {
            #expect(bus.port > 0)
            #expect(bus.url == "nats://127.0.0.1:\(bus.port)")
            #expect(canConnect(host: "127.0.0.1", port: bus.port))
            // It cannot be reached through this host's other addresses: it does not listen there.
            for address in nonLoopbackAddresses() {
                #expect(!canConnect(host: address, port: bus.port), "reached the bus through \(address)")
            }
        }
    }

    @Test func nodeAndAgentTalkOverTheirSubjects() async throws {
        try await withTestBus { test in
            let node = try await test.connectNode()
            let agent = try await test.connectAgent("a1")
            try await withTeardown({ await node.close(); await agent.close() }) {

                // The agent serves its ping; the node asks.
                let pings = try await agent.subscribe(to: "agentint.a1.>")
                try await agent.flush()
                let responder = Task {
                    for await message in pings {
                        if let reply = message.replyTo { try await agent.publish("pong:\(message.string)", to: reply) }
                    }
                }
                defer { responder.cancel() }
                let answer = try await node.request("hello", to: "agentint.a1.ping", timeout: .seconds(2))
                #expect(answer.string == "pong:hello")

                // The agent publishes logs; the node hears them through a wildcard.
                let logs = try await node.subscribe(to: "hostint.*.logs")
                try await node.flush()
                try await agent.publish("line 1", to: "hostint.a1.logs")
                try await agent.publish("line 2", to: "hostint.a1.logs")
                let lines = try await collect(logs, count: 2)
                #expect(lines.map(\.string) == ["line 1", "line 2"])
                #expect(lines.allSatisfy { $0.subject == "hostint.a1.logs" })

                // The agent's own request (handshake) gets its reply through its inbox.
                let handshakes = try await node.subscribe(to: "hostint.*.handshake")
                try await node.flush()
                let server = Task {
                    for await message in handshakes {
                        if let reply = message.replyTo { try await node.publish("{}", to: reply) }
                    }
                }
                defer { server.cancel() }
                let reply = try await agent.request("{\"id\":\"a1\"}", to: "hostint.a1.handshake", timeout: .seconds(2))
                #expect(reply.string == "{}")
            }
        }
    }

    @Test func aRequestNobodyServesFailsAtOnce() async throws {
        try await withTestBus { test in
            let node = try await test.connectNode()
            try await withTeardown({ await node.close() }) {
                let started = ContinuousClock.now
                await #expect(throws: NATSError.noResponders(subject: "agentint.gone.undeploy")) {
                    _ = try await node.request("", to: "agentint.gone.undeploy", timeout: .seconds(10))
                }
                #expect(started.duration(to: .now) < .seconds(5), "answered by the bus, not by the timeout")
            }
        }
    }

    @Test func headersTravelWithTheMessage() async throws {
        try await withTestBus { test in
            let node = try await test.connectNode()
            let agent = try await test.connectAgent("a1")
            try await withTeardown({ await node.close(); await agent.close() }) {
                let logs = try await node.subscribe(to: "hostint.a1.logs")
                try await node.flush()
                var headers = NATSHeaders()
                headers["x-nex-log-stream"] = "stderr"
                try await agent.publish(ByteBuffer(string: "oops"), to: "hostint.a1.logs", headers: headers)
                let message = try #require(try await collect(logs, count: 1).first)
                #expect(message.headers?["x-nex-log-stream"] == "stderr")
                #expect(message.string == "oops")
            }
        }
    }

    @Test func agentCannotSubscribeToAnotherAgentsSubjectsAndStaysConnected() async throws {
        try await withTestBus { test in
            let node = try await test.connectNode()
            let a1 = try await test.connectAgent("a1")
            let a2 = try await test.connectAgent("a2")
            try await withTeardown({ await node.close(); await a1.close(); await a2.close() }) {
                let a1Events = ClientEvents(a1)

                let snoop = try await a1.subscribe(to: "agentint.a2.>")
                let broad = try await a1.subscribe(to: "agentint.>")
                let everything = try await a1.subscribe(to: ">")
                try await a1.flush()
                try await waitFor("three permission errors") { a1Events.permissionViolations.count >= 3 }
                let violations = a1Events.permissionViolations
                #expect(violations.contains { $0.contains("Subscription") && $0.contains("agentint.a2.>") }, "\(violations)")
                #expect(violations.contains { $0.contains("\"agentint.>\"") }, "\(violations)")
                _ = (snoop, broad, everything)

                // a2 still gets its own messages, and a1 none of them.
                let own = try await a2.subscribe(to: "agentint.a2.>")
                try await a2.flush()
                try await node.publish("for a2", to: "agentint.a2.deploy")
                let got = try await collect(own, count: 1)
                #expect(got.map(\.string) == ["for a2"])
                #expect(a1.isConnected)
                // a1's own subjects still work after the violations.
                let mine = try await a1.subscribe(to: "agentint.a1.ping")
                try await a1.flush()
                try await node.publish("for a1", to: "agentint.a1.ping")
                #expect(try await collect(mine, count: 1).map(\.string) == ["for a1"])
            }
        }
    }

    @Test func agentCannotPublishAsAnotherAgent() async throws {
        try await withTestBus { test in
            let node = try await test.connectNode()
            let a1 = try await test.connectAgent("a1")
            try await withTeardown({ await node.close(); await a1.close() }) {
                let a1Events = ClientEvents(a1)
                let heard = try await node.subscribe(to: "hostint.>")
                try await node.flush()

                try await a1.publish("forged", to: "hostint.a2.x")
                try await a1.publish("forged", to: "agentint.a2.deploy")
                try await a1.publish("mine", to: "hostint.a1.x")
                try await a1.flush()
                let got = try await collect(heard, count: 1)
                #expect(got.map(\.subject) == ["hostint.a1.x"])
                try await waitFor("publish violations") { a1Events.permissionViolations.count >= 2 }
                #expect(a1Events.permissionViolations.contains { $0.contains("Publish") && $0.contains("hostint.a2.x") })
                #expect(a1.isConnected)

                // Nor may it name another agent's subject as the reply (the node would answer there).
                try await a1.publish("hi", to: "hostint.a1.handshake", replyTo: "agentint.a2.undeploy")
                try await a1.flush()
                try await waitFor("reply violation") { a1Events.permissionViolations.contains { $0.contains("Reply") && $0.contains("agentint.a2.undeploy") } }
                try await node.flush()
                #expect(heard.pendingMessages == 0, "the message with a foreign reply subject was not delivered")
            }
        }
    }

    @Test func aReplySubjectMayBeAnsweredOnceOnly() async throws {
        try await withTestBus { test in
            let node = try await test.connectNode()
            let raw = try await RawConnection(port: test.bus.port)
            try await withTeardown({ await node.close(); await raw.close() }) {
                let agent = test.agents["a1"]!
                let nonce = try await raw.nonce()
                let sig = agent.signNonceBase64URL(nonce)
                try await raw.send("CONNECT {\"nkey\":\"\(agent.publicKey)\",\"sig\":\"\(sig)\",\"verbose\":false,\"headers\":true}\r\nSUB agentint.a1.ping 1\r\nPING\r\n")
                try await raw.waitFor("PONG")

                let replies = try await node.subscribe(to: "reply.node.1")
                try await node.flush()
                try await node.publish("ping", to: "agentint.a1.ping", replyTo: "reply.node.1")
                try await raw.waitFor("MSG agentint.a1.ping 1 reply.node.1 4")
                try await raw.send("PUB reply.node.1 2\r\nok\r\nPUB reply.node.1 5\r\nagain\r\nPING\r\n")
                let got = try await collect(replies, count: 1)
                #expect(got.map(\.string) == ["ok"])
                try await raw.waitFor("Permissions Violation for Publish to \"reply.node.1\"")
                #expect(raw.isOpen)
            }
        }
    }

    @Test func unknownKeysAndBadSignaturesAreRefused() async throws {
        try await withTestBus { test in
            // A key the bus does not know.
            let stranger = try NKeyPair.generate(.user)
            await #expect(throws: (any Error).self) { _ = try await test.connect(seed: stranger.seed, name: "stranger") }

            // A known key with a signature over the wrong nonce.
            let raw = try await RawConnection(port: test.bus.port)
            let agent = test.agents["a1"]!
            _ = try await raw.nonce()
            let wrong = agent.signNonceBase64URL("not-the-nonce")
            try await raw.send("CONNECT {\"nkey\":\"\(agent.publicKey)\",\"sig\":\"\(wrong)\"}\r\n")
            try await raw.waitFor("-ERR 'Authorization Violation'")
            try await raw.waitUntilClosed()

            // Anything before CONNECT.
            let early = try await RawConnection(port: test.bus.port)
            _ = try await early.nonce()
            try await early.send("SUB > 1\r\n")
            try await early.waitFor("-ERR 'Authorization Violation'")
            try await early.waitUntilClosed()

            // Silence: cut off after the auth timeout.
            var limits = BusLimits()
            limits.authTimeout = .milliseconds(200)
            try await withTestBus(limits: limits) { quick in
                let silent = try await RawConnection(port: quick.bus.port)
                try await silent.waitFor("Authentication Timeout")
                try await silent.waitUntilClosed()
            }
        }
    }

    @Test func anAgentMayHoldOnlyAFewConnections() async throws {
        var limits = BusLimits()
        limits.maxConnectionsPerUser = 2
        try await withTestBus(limits: limits) { test in
            let first = try await test.connectAgent("a1")
            let second = try await test.connectAgent("a1")
            await #expect(throws: (any Error).self) { _ = try await test.connectAgent("a1") }
            // Another agent and the node are not affected; a closed connection frees its slot.
            let other = try await test.connectAgent("a2")
            var nodes: [NATSClient] = []
            for _ in 0..<4 { nodes.append(try await test.connectNode()) }
            await first.close()
            try await waitFor("the slot to free") { await test.bus.connectionCount() == 6 }
            let third = try await test.connectAgent("a1")
            for client in [second, other, third] + nodes { await client.close() }
        }
    }

    @Test func removingAUserClosesItsConnection() async throws {
        try await withTestBus { test in
            let agent = try await test.connectAgent("a1")
            let other = try await test.connectAgent("a2")
            try await withTeardown({ await agent.close(); await other.close() }) {
                #expect(await test.bus.connectionCount() == 2)
                await test.bus.removeUser(publicKey: test.agents["a1"]!.publicKey)
                try await waitFor("a1 disconnected") { !agent.isConnected }
                #expect(other.isConnected)
                await #expect(throws: (any Error).self) { _ = try await test.connectAgent("a1") }
            }
        }
    }

    @Test func hostileInputGetsAnErrorAndOthersKeepGoing() async throws {
        var limits = BusLimits()
        limits.maxPayload = 1024
        limits.maxControlLine = 512
        try await withTestBus(limits: limits) { test in
            let node = try await test.connectNode()
            let agent = try await test.connectAgent("a1")
            try await withTeardown({ await node.close(); await agent.close() }) {
                let logs = try await node.subscribe(to: "hostint.a1.logs")
                try await node.flush()
                let key = test.agents["a2"]!

                let cases: [(String, [UInt8], String)] = [
                    ("garbage", Array("HELLO WORLD\r\n".utf8), "Protocol Error"),
                    ("oversized control line", Array(("PUB hostint.a2.x " + String(repeating: "x", count: 600) + " 1\r\n").utf8), "Protocol Error"),
                    ("oversized payload", Array("PUB hostint.a2.logs 5000\r\n".utf8), "Protocol Error"),
                    ("negative size", Array("PUB hostint.a2.logs -1\r\n".utf8), "Protocol Error"),
                    ("binary noise", (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) } + [13, 10], "Protocol Error"),
                    ("unterminated payload", Array("PUB hostint.a2.logs 2\r\nabcdef\r\n".utf8), "Protocol Error"),
                ]
                for (name, bytes, expected) in cases {
                    let raw = try await RawConnection(port: test.bus.port)
                    let nonce = try await raw.nonce()
                    try await raw.send("CONNECT {\"nkey\":\"\(key.publicKey)\",\"sig\":\"\(key.signNonceBase64URL(nonce))\"}\r\nPING\r\n")
                    try await raw.waitFor("PONG")
                    try await raw.send(bytes: bytes)
                    try await raw.waitFor(expected)
                    try await raw.waitUntilClosed()
                    #expect(!raw.isOpen, "\(name)")
                }
                // Bad subjects are errors that leave the connection up.
                let raw = try await RawConnection(port: test.bus.port)
                let nonce = try await raw.nonce()
                try await raw.send("CONNECT {\"nkey\":\"\(key.publicKey)\",\"sig\":\"\(key.signNonceBase64URL(nonce))\"}\r\n")
                try await raw.send("PUB hostint.a2.* 1\r\nx\r\nSUB agentint..a2 1\r\nPING\r\n")
                try await raw.waitFor("PONG")
                #expect(raw.text.contains("Invalid Publish Subject") && raw.text.contains("Invalid Subject"))
                #expect(raw.isOpen)

                try await agent.publish("still here", to: "hostint.a1.logs")
                #expect(try await collect(logs, count: 1).map(\.string) == ["still here"])
            }
        }
    }

    @Test func aSlowConsumerIsCutOffAndOthersKeepGoing() async throws {
        var limits = BusLimits()
        limits.maxPendingBytes = 256 * 1024
        try await withTestBus(limits: limits) { test in
            let node = try await test.connectNode()
            let fast = try await test.connectAgent("a2")
            try await withTeardown({ await node.close(); await fast.close() }) {
                let key = test.agents["a1"]!
                // a1 subscribes, then stops reading.
                let stalled = try await RawConnection(port: test.bus.port, autoRead: false)
                stalled.readOnce()
                let nonce = try await stalled.nonce()
                try await stalled.send("CONNECT {\"nkey\":\"\(key.publicKey)\",\"sig\":\"\(key.signNonceBase64URL(nonce))\"}\r\nSUB agentint.a1.> 1\r\n")
                let mine = try await fast.subscribe(to: "agentint.a2.>")
                try await fast.flush()
                try await waitFor("both agents connected") { await test.bus.connectionCount() == 3 }
                try await node.flush()

                let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
                for _ in 0..<400 {  // 25 MiB: far more than socket buffers plus the pending limit
                    try await node.publish(chunk, to: "agentint.a1.flood")
                }
                try await node.flush()
                try await waitFor(timeout: .seconds(10), "the stalled agent to be cut off") { await test.bus.connectionCount() == 2 }
                try await node.publish("ok", to: "agentint.a2.ping")
                #expect(try await collect(mine, count: 1).map(\.string) == ["ok"])
                #expect(node.isConnected && fast.isConnected)
                await stalled.close()
            }
        }
    }
}

/// This host's IPv4 addresses that are not loopback.
func nonLoopbackAddresses() -> [String] {
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0 else { return [] }
    defer { freeifaddrs(list) }
    var found: [String] = []
    var cursor = list
    while let entry = cursor {
        defer { cursor = entry.pointee.ifa_next }
        guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(address, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count), nil, 0,
                          NI_NUMERICHOST) == 0 else { continue }
        let text = String(cString: host)
        if !text.hasPrefix("127.") { found.append(text) }
    }
    return found
}

/// Whether a TCP connection to host:port succeeds (blocking, loopback-fast).
func canConnect(host: String, port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, host, &address.sin_addr)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}
