import Foundation
import NATSTestSupport
import NIOCore
import Testing
@testable import NATSWire

@Suite struct JetStreamContextTests {
    @Test func accountInfoAndStreamLifecycle() async throws {
        try await withJetStream { f in
            let before = try await f.js.accountInfo()
            #expect(before.streams == 0)
            var config = StreamConfig(name: "ORDERS", subjects: ["orders.>"])
            config.maxMessagesPerSubject = 3
            config.allowDirect = true
            let created = try await f.js.createStream(config)
            #expect(created.config.name == "ORDERS")
            #expect(created.config.subjects == ["orders.>"])
            #expect(created.config.maxMessagesPerSubject == 3)
            // Creating the same stream again is idempotent.
            try await f.js.createStream(config)
            #expect(try await f.js.accountInfo().streams == 1)

            let ack = try await f.js.publish("one", to: "orders.eu")
            #expect(ack.stream == "ORDERS")
            #expect(ack.sequence == 1)
            try await f.js.publish("two", to: "orders.us", headers: ["X-Trace": "7"])
            let info = try await f.js.streamInfo("ORDERS")
            #expect(info.state.messages == 2)
            #expect(info.state.lastSequence == 2)

            try await f.js.deleteStream("ORDERS")
            let error = await #expect(throws: JetStreamError.self) { try await f.js.streamInfo("ORDERS") }
            #expect(error?.code == 404)
            #expect(error?.errCode == JetStreamError.streamNotFound)
            #expect(error?.isNotFound == true)
        }
    }

    @Test func apiErrorsCarryCodeErrCodeAndDescription() async throws {
        try await withJetStream { f in
            try await f.js.createStream(StreamConfig(name: "S", subjects: ["s.>"]))
            var other = StreamConfig(name: "S", subjects: ["t.>"])
            other.maxMessages = 5
            let error = await #expect(throws: JetStreamError.self) { try await f.js.createStream(other) }
            #expect(error?.kind == .api)
            #expect(error?.code == 400)
            #expect(error?.errCode == JetStreamError.streamNameInUse)
            #expect(error?.errorDescription.isEmpty == false)
            #expect(error?.subject == "$JS.API.STREAM.CREATE.S")
            // Names are refused before anything is sent.
            let bad = await #expect(throws: JetStreamError.self) { try await f.js.streamInfo("a.b") }
            #expect(bad?.kind == .invalidArgument)
            await #expect(throws: JetStreamError.self) { try await f.js.createStream(StreamConfig(name: "x y")) }
        }
    }

    @Test func publishExpectationsAndDeduplication() async throws {
        try await withJetStream { f in
            try await f.js.createStream(StreamConfig(name: "P", subjects: ["p.>"]))
            let first = try await f.js.publish("a", to: "p.a", options: .init(messageID: "m1"))
            let again = try await f.js.publish("a", to: "p.a", options: .init(messageID: "m1"))
            #expect(!first.duplicate)
            #expect(again.duplicate)
            #expect(again.sequence == first.sequence)

            try await f.js.publish("b", to: "p.a", options: .init(expectedLastSubjectSequence: first.sequence))
            let wrong = await #expect(throws: JetStreamError.self) {
                try await f.js.publish("c", to: "p.a", options: .init(expectedLastSubjectSequence: first.sequence))
            }
            #expect(wrong?.errCode == JetStreamError.wrongLastSequence)
            #expect(wrong?.isWrongLastSequence == true)
            let stream = await #expect(throws: JetStreamError.self) {
                try await f.js.publish("c", to: "p.a", options: .init(expectedStream: "OTHER"))
            }
            #expect(stream?.kind == .api)
            try await f.js.publish("d", to: "p.b", options: .init(expectedLastSequence: 2))
            let noStream = await #expect(throws: JetStreamError.self) { try await f.js.publish("x", to: "nowhere") }
            #expect(noStream?.kind == .notAvailable)
        }
    }

    @Test func directGetAndMessageGetReadTheSameMessage() async throws {
        try await withJetStream { f in
            var config = StreamConfig(name: "G", subjects: ["g.>"])
            config.allowDirect = true
            try await f.js.createStream(config)
            try await f.js.publish("first", to: "g.a", headers: ["X-One": "1"])
            try await f.js.publish("second", to: "g.a")
            try await f.js.publish("third", to: "g.b")

            let direct = try await f.js.directGet(stream: "G", .lastBySubject("g.a"))
            let stored = try await f.js.messageGet(stream: "G", .lastBySubject("g.a"))
            #expect(direct.sequence == 2 && stored.sequence == 2)
            #expect(String(buffer: direct.payload) == "second" && String(buffer: stored.payload) == "second")
            #expect(direct.subject == "g.a" && stored.subject == "g.a")
            #expect(abs(direct.time.timeIntervalSince(stored.time)) < 0.001)
            #expect(abs(direct.time.timeIntervalSinceNow) < 60)

            let bySequence = try await f.js.messageGet(stream: "G", .sequence(1))
            #expect(bySequence.headers?["X-One"] == "1")
            #expect(try await f.js.directGet(stream: "G", .sequence(1)).headers?["X-One"] == "1")
            #expect(try await f.js.directGet(stream: "G", .nextBySubject("g.b", from: 1)).sequence == 3)
            #expect(try await f.js.directGet(stream: "G", .lastBySubject("g.*")).sequence == 3)

            let missingDirect = await #expect(throws: JetStreamError.self) {
                try await f.js.directGet(stream: "G", .lastBySubject("g.none"))
            }
            #expect(missingDirect?.code == 404)
            #expect(missingDirect?.isNotFound == true)
            let missing = await #expect(throws: JetStreamError.self) {
                try await f.js.messageGet(stream: "G", .sequence(99))
            }
            #expect(missing?.errCode == JetStreamError.noMessageFound)
        }
    }

    @Test func directGetWithoutAllowDirectIsUnanswered() async throws {
        try await withJetStream { f in
            try await f.js.createStream(StreamConfig(name: "ND", subjects: ["nd"]))
            try await f.js.publish("x", to: "nd")
            var js = f.js
            js.timeout = .milliseconds(300)
            // nats-server 2.9 lets the request time out; later versions answer "no responders".
            let error = await #expect(throws: (any Error).self) { try await js.directGet(stream: "ND", .sequence(1)) }
            switch error {
            case let error as JetStreamError: #expect(error.kind == .notAvailable)
            case let error as NATSError:
                #expect(error == .timeout(operation: "request to '$JS.API.DIRECT.GET.ND'", seconds: 0.3))
            default: Issue.record("unexpected \(String(describing: error))")
            }
            #expect(try await f.js.messageGet(stream: "ND", .sequence(1)).payload == ByteBuffer(string: "x"))
        }
    }

    @Test func jetStreamDisabledIsNotAvailable() async throws {
        try await withNATSServer(jetStream: false) { server in
            try await withConnectedClient(to: server) { client in
                let error = await #expect(throws: JetStreamError.self) { try await client.jetStream().accountInfo() }
                #expect(error?.kind == .notAvailable)
                #expect(error?.code == 503)
            }
        }
    }

    @Test func domainPrefixSteersTheAPI() async throws {
        try await withJetStream(config: "jetstream { domain: hub }", domain: "hub") { f in
            #expect(f.js.apiPrefix == "$JS.hub.API")
            let info = try await f.js.accountInfo()
            #expect(info.domain == "hub")
            let kv = try await f.js.createKeyValue(KeyValueConfig(bucket: "dom"))
            try await kv.put("k", "v")
            #expect(try await kv.get("k").string == "v")
            let store = try await f.js.createObjectStore(ObjectStoreConfig(bucket: "domobj"))
            try await store.put("o", data: pseudoRandomBytes(300_000))
            #expect(try await store.get("o").data == pseudoRandomBytes(300_000))
            let watcher = try await kv.watch()
            let events = try await collect(watcher, count: 2)
            #expect(events.first?.entry?.key == "k")
            await watcher.stop()

            let wrong = try f.client.jetStream(domain: "elsewhere")
            let error = await #expect(throws: JetStreamError.self) { try await wrong.accountInfo() }
            #expect(error?.kind == .notAvailable)
            #expect(error?.subject == "$JS.elsewhere.API.INFO")
            #expect(throws: JetStreamError.self) { try f.client.jetStream(domain: "a.b") }
        }
    }

    @Test func orderedConsumerDeliversInOrderAndAnswersFlowControl() async throws {
        try await withJetStream { f in
            try await f.js.createStream(StreamConfig(name: "OC", subjects: ["oc.>"]))
            let payload = [UInt8](repeating: 7, count: 64 * 1024)
            for index in 0..<600 {
                try await f.js.publish(payload + [UInt8(index % 256)], to: "oc.\(index % 3)")
            }
            let consumer = try await f.js.orderedConsumer(stream: "OC", filterSubject: "oc.1")
            #expect(consumer.initialPending == 200)
            let sequences = try await withTimeLimit(.seconds(20), "ordered consumer") {
                var sequences: [UInt64] = []
                for try await message in consumer {
                    #expect(message.subject == "oc.1")
                    sequences.append(message.streamSequence)
                    try await Task.sleep(for: .microseconds(200))  // slower than the server: flow control kicks in
                    if message.pending == 0 { break }
                }
                return sequences
            }
            #expect(sequences == Array(stride(from: 2, through: 599, by: 3)).map(UInt64.init))
            #expect(consumer.restarts == 0)
            await consumer.stop()
        }
    }

    @Test func orderedConsumerRecoversAfterServerRestart() async throws {
        try await withJetStream { f in
            try await f.js.createStream(StreamConfig(name: "R", subjects: ["r"]))
            try await f.js.publish("1", to: "r")
            let consumer = try await f.js.orderedConsumer(stream: "R", idleHeartbeat: .milliseconds(200))
            let next = try await withTimeLimit(.seconds(30), "message after restart") {
                var iterator = consumer.makeAsyncIterator()
                #expect(try await iterator.next()?.string == "1")
                try await f.server.restart()
                try await waitFor(timeout: .seconds(10)) { f.client.isConnected }
                _ = try await waitForValue(timeout: .seconds(10)) { try? await f.js.publish("2", to: "r") }
                return try await iterator.next()
            }
            #expect(next?.string == "2")
            #expect(next?.streamSequence == 2)
            #expect(consumer.restarts >= 1)
            await consumer.stop()
        }
    }
}
