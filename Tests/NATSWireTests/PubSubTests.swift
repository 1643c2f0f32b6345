import NATSTestSupport
import NIOCore
import Testing
@testable import NATSWire

@Suite struct PubSubTests {
    @Test func messagesArriveInOrderAndIntact() async throws {
        try await withNATSServer { server in
            try await withConnectedClient(to: server) { client in
                let sub = try await client.subscribe(to: "order.test")
                try await client.flush()
                let maxPayload = try #require(client.serverInfo?.maxPayload)
                let sizes = [0, 1, 2, 127, 4096, 65_535, 65_536, 300_000, maxPayload - 64]
                for (index, size) in sizes.enumerated() {
                    let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
                    try await client.publish(payload, to: "order.test")
                }
                for index in 0..<1000 {
                    try await client.publish("n\(index)", to: "order.test")
                }
                let messages = try await collect(sub, count: sizes.count + 1000)
                for (index, size) in sizes.enumerated() {
                    let expected = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
                    #expect(Array(buffer: messages[index].payload) == expected, "payload \(index) of \(size) bytes")
                }
                for index in 0..<1000 {
                    #expect(messages[sizes.count + index].string == "n\(index)")
                }
            }
        }
    }

    @Test func payloadAboveMaxPayloadIsRefusedBeforeSending() async throws {
        try await withNATSServer(config: "max_payload: 1024") { server in
            try await withConnectedClient(to: server) { client in
                #expect(client.serverInfo?.maxPayload == 1024)
                await #expect(throws: NATSError.payloadTooLarge(size: 1025, maxPayload: 1024)) {
                    try await client.publish([UInt8](repeating: 1, count: 1025), to: "big")
                }
                try await client.publish([UInt8](repeating: 1, count: 1024), to: "big")
                try await client.flush()
                #expect(client.isConnected)
            }
        }
    }

    @Test func headersRoundTripWithCaseAndRepeats() async throws {
        try await withNATSServer { server in
            try await withConnectedClient(to: server) { client in
                let sub = try await client.subscribe(to: "hdr")
                var headers = NATSHeaders()
                headers.append("X-Trace", "abc")
                headers.append("x-multi", "one")
                headers.append("x-multi", "two")
                headers.append("Unicode", "héllo wörld")
                try await client.publish("body", to: "hdr", headers: headers)
                try await client.publish(ByteBuffer(), to: "hdr", headers: NATSHeaders(["Only": "headers"]))
                let messages = try await collect(sub, count: 2)
                #expect(messages[0].headers == headers)
                #expect(messages[0].headers?.fields.map(\.name) == ["X-Trace", "x-multi", "x-multi", "Unicode"])
                #expect(messages[0].headers?["x-trace"] == "abc")
                #expect(messages[0].headers?.values(for: "X-MULTI") == ["one", "two"])
                #expect(messages[0].string == "body")
                #expect(messages[1].payload.readableBytes == 0)
                #expect(messages[1].headers?["Only"] == "headers")
            }
        }
    }

    @Test func badSubjectsAndHeadersAreRefusedWithoutHarm() async throws {
        try await withNATSServer { server in
            try await withConnectedClient(to: server) { client in
                await #expect(throws: NATSError.self) { try await client.publish("x", to: "") }
                await #expect(throws: NATSError.self) { try await client.publish("x", to: "a b") }
                await #expect(throws: NATSError.self) { try await client.publish("x", to: "a\r\nPUB evil 1") }
                await #expect(throws: NATSError.self) { try await client.subscribe(to: "a.>.b") }
                await #expect(throws: NATSError.self) { try await client.subscribe(to: "a..b") }
                await #expect(throws: NATSError.self) { try await client.subscribe(to: "a", queue: "q 1") }
                await #expect(throws: NATSError.self) {
                    try await client.publish("x", to: "a", headers: NATSHeaders(["Bad Name": "v"]))
                }
                await #expect(throws: NATSError.self) {
                    try await client.publish("x", to: "a", headers: NATSHeaders(["Name": "line\r\nbreak"]))
                }
                let sub = try await client.subscribe(to: "still.ok")
                try await client.publish("fine", to: "still.ok")
                #expect(try await collect(sub, count: 1).first?.string == "fine")
            }
        }
    }

    @Test func queueGroupsShareMessages() async throws {
        try await withNATSServer { server in
            try await withConnectedClient(to: server) { client in
                let a = try await client.subscribe(to: "work", queue: "workers")
                let b = try await client.subscribe(to: "work", queue: "workers")
                let plain = try await client.subscribe(to: "work")
                try await client.flush()
                for index in 0..<200 { try await client.publish("\(index)", to: "work") }
                let all = try await collect(plain, count: 200)
                try await client.flush()
                try await Task.sleep(for: .milliseconds(100))
                #expect(all.count == 200)
                #expect(a.pendingMessages + b.pendingMessages == 200)
                #expect(a.pendingMessages > 0 && b.pendingMessages > 0)
            }
        }
    }

    @Test func unsubscribeAfterNEndsTheSequence() async throws {
        try await withNATSServer { server in
            try await withConnectedClient(to: server) { client in
                let sub = try await client.subscribe(to: "limited")
                try await sub.unsubscribe(after: 3)
                for index in 0..<10 { try await client.publish("\(index)", to: "limited") }
                let received = try await withTimeLimit(.seconds(10), "the limited subscription to end") {
                    var received: [String] = []
                    for await message in sub { received.append(message.string) }
                    return received
                }
                #expect(received == ["0", "1", "2"])
                await #expect(throws: NATSError.self) { try await sub.unsubscribe() }
            }
        }
    }

    @Test func unsubscribeStopsDelivery() async throws {
        try await withNATSServer { server in
            try await withConnectedClient(to: server) { client in
                let sub = try await client.subscribe(to: "stop")
                try await client.publish("before", to: "stop")
                try await client.flush()
                try await sub.unsubscribe()
                try await client.publish("after", to: "stop")
                try await client.flush()
                let received = try await withTimeLimit(.seconds(10), "the unsubscribed sequence to end") {
                    var received: [String] = []
                    for await message in sub { received.append(message.string) }
                    return received
                }
                #expect(received == ["before"])
            }
        }
    }

    @Test func slowConsumerDropsAreCountedAndReported() async throws {
        try await withNATSServer { server in
            try await withConnectedClient(to: server) { client in
                let events = EventRecorder(client)
                let sub = try await client.subscribe(to: "flood", pendingMessages: 10)
                for index in 0..<100 { try await client.publish("\(index)", to: "flood") }
                try await client.flush()
                try await Task.sleep(for: .milliseconds(100))
                #expect(sub.pendingMessages == 10)
                #expect(sub.droppedMessages == 90)
                let slow = try await events.waitFor("slowConsumer", timeout: .seconds(10)) { event in
                    if case .slowConsumer = event { return true }
                    return false
                }
                guard case .slowConsumer(let subject, _, let dropped) = slow else { return }
                #expect(subject == "flood")
                #expect(dropped >= 1)
                let kept = try await collect(sub, count: 10)
                #expect(kept.map(\.string) == (0..<10).map { "\($0)" })
            }
        }
    }

    @Test func tasksPreferringTheClientExecutorRunOnItsEventLoop() async throws {
        try await withNATSServer { server in
            try await withConnectedClient(to: server) { client in
                let service = try await client.subscribe(to: "on.loop")
                let responder = Task(executorPreference: client.taskExecutor) { () -> Bool in
                    var alwaysOnLoop = true
                    for await request in service {
                        alwaysOnLoop = alwaysOnLoop && client.taskExecutor.eventLoop.inEventLoop
                        guard let reply = request.replyTo else { continue }
                        try? await client.publish(request.payload, to: reply)
                    }
                    return alwaysOnLoop
                }
                try await client.flush()
                let answers = try await Task(executorPreference: client.taskExecutor) { () -> [String] in
                    var answers: [String] = []
                    for index in 0..<50 {
                        #expect(client.taskExecutor.eventLoop.inEventLoop)
                        answers.append(try await client.request("\(index)", to: "on.loop", timeout: .seconds(10)).string)
                    }
                    return answers
                }.value
                #expect(answers == (0..<50).map { "\($0)" })
                try await service.unsubscribe()
                #expect(await responder.value)
            }
        }
    }
}
