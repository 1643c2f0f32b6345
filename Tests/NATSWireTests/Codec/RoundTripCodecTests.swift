import Foundation
import NIOCore
import Testing
@testable import NATSWire

/// Encoder output decodes back to the same values with the decoder of the other side.
@Suite struct RoundTripCodecTests {
    static let repeatedHeaders: NATSHeaders = {
        var headers = NATSHeaders()
        headers.append("X-Trace", "a")
        headers.append("x-trace", "b")
        headers.append("X-TRACE", "c: with colon")
        headers.append("Nats-Msg-Id", "id-1")
        headers.append("Empty", "")
        return headers
    }()

    static let headerVariants: [NATSHeaders?] = [
        nil,
        NATSHeaders(),
        repeatedHeaders,
        NATSHeaders(status: 503),
        NATSHeaders(status: 408, statusDescription: "Request Timeout"),
        {
            var headers = NATSHeaders(status: 100, statusDescription: "FlowControl Request")
            headers.append("Nats-Consumer-Stalled", "$JS.FC.x.y.z")
            return headers
        }(),
        NATSHeaders(["Greeting": "grüße 🌍", "KV-Operation": "PURGE", "Nats-Rollup": "sub"]),
    ]

    static let payloads: [[UInt8]] = [[], [0x41], Array("Hello NATS!\r\nMSG x 1 1\r\n".utf8), Array(0...255)]

    // MARK: Client ops (client encoder -> ClientOpDecoder)

    @Test func publishRoundTrips() throws {
        for headers in Self.headerVariants {
            for reply in [nil, "_INBOX.abc.def"] as [String?] {
                for payload in Self.payloads {
                    var buffer = ByteBuffer()
                    buffer.writePublish(subject: "foo.bar", replyTo: reply, headers: headers, payload: payload)
                    let text = String(buffer: buffer)
                    #expect(text.hasPrefix(headers == nil ? "PUB " : "HPUB "))
                    #expect(try clientOps(Array(buffer: buffer))
                        == [.pub(subject: "foo.bar", replyTo: reply, headers: headers, payload: ByteBuffer(bytes: payload))])
                }
            }
        }
    }

    @Test func publishEncodesExactBytes() {
        var buffer = ByteBuffer()
        buffer.writePublish(subject: "FOO", replyTo: nil, headers: NATSHeaders(["Bar": "Baz"]), payload: Array("Hello NATS!".utf8))
        #expect(String(buffer: buffer) == "HPUB FOO 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n")
        buffer.clear()
        buffer.writePublish(subject: "a", replyTo: "r", headers: nil, payload: Array("xyz".utf8))
        #expect(String(buffer: buffer) == "PUB a r 3\r\nxyz\r\n")
        buffer.clear()
        buffer.writePublish(subject: "a", replyTo: "r", headers: NATSHeaders(status: 503), payload: [])
        #expect(String(buffer: buffer) == "HPUB a r 16 16\r\nNATS/1.0 503\r\n\r\n\r\n")
    }

    @Test func subscribeRoundTrips() throws {
        for queue in [nil, "workers"] as [String?] {
            for sid in [0, 1, 9, 10, 12345, Int(Int32.max)] {
                var buffer = ByteBuffer()
                buffer.writeSubscribe(subject: "a.*.>", queue: queue, sid: sid)
                #expect(try clientOps(Array(buffer: buffer)) == [.sub(subject: "a.*.>", queue: queue, sid: String(sid))])
            }
        }
    }

    @Test func unsubscribeRoundTrips() throws {
        for max in [nil, 0, 1, 10, 1_000_000] as [Int?] {
            var buffer = ByteBuffer()
            buffer.writeUnsubscribe(sid: 77, max: max)
            #expect(try clientOps(Array(buffer: buffer)) == [.unsub(sid: "77", max: max)])
        }
    }

    @Test func connectRoundTrips() throws {
        var full = ConnectInfo()
        full.verbose = true
        full.pedantic = true
        full.tlsRequired = true
        full.name = "a \"quoted\" name / with slash"
        full.protocol = 1
        full.echo = false
        full.authToken = "t"
        full.user = "u"
        full.pass = "p\\ss"
        full.nkey = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"
        full.jwt = "eyJhbGciOi.x.y"
        full.sig = "c2lnbmF0dXJl"
        for info in [ConnectInfo(), full] {
            var buffer = ByteBuffer()
            try buffer.writeConnect(info)
            #expect(String(buffer: buffer).hasPrefix("CONNECT {"))
            #expect(try clientOps(Array(buffer: buffer)) == [.connect(info)])
        }
    }

    @Test func pingPongRoundTripOnBothSides() throws {
        var buffer = ByteBuffer()
        buffer.writePing()
        buffer.writePong()
        #expect(String(buffer: buffer) == "PING\r\nPONG\r\n")
        #expect(try clientOps(Array(buffer: buffer)) == [.ping, .pong])
        #expect(try serverOps(Array(buffer: buffer)) == [.ping, .pong])
    }

    // MARK: Server ops (server encoder -> ServerOpDecoder)

    @Test func messageRoundTrips() throws {
        for headers in Self.headerVariants {
            for reply in [nil, "_INBOX.abc.def"] as [String?] {
                for payload in Self.payloads {
                    var buffer = ByteBuffer()
                    buffer.writeMessage(subject: "foo.bar", sid: 12, replyTo: reply, headers: headers, payload: payload)
                    #expect(String(buffer: buffer).hasPrefix(headers == nil ? "MSG " : "HMSG "))
                    let expected = NATSMessage(
                        subject: "foo.bar", sid: 12, replyTo: reply, headers: headers, payload: ByteBuffer(bytes: payload))
                    #expect(try serverOps(Array(buffer: buffer)) == [.msg(expected)])
                }
            }
        }
    }

    @Test func repeatedHeaderNamesKeepOrderAndCase() throws {
        var buffer = ByteBuffer()
        buffer.writeMessage(subject: "s", sid: 1, replyTo: nil, headers: Self.repeatedHeaders, payload: [])
        let message = try #require(try onlyMessage(String(buffer: buffer)))
        let headers = try #require(message.headers)
        #expect(headers.fields.map(\.name) == ["X-Trace", "x-trace", "X-TRACE", "Nats-Msg-Id", "Empty"])
        #expect(headers.values(for: "x-TrAcE") == ["a", "b", "c: with colon"])
        #expect(headers["X-TRACE"] == "a")
    }

    @Test func statusRoundTrips() throws {
        for (status, description) in [(503, nil), (404, "No Messages"), (408, "Request Timeout"), (409, "Exceeded MaxWaiting"),
                                      (100, "Idle Heartbeat")] as [(Int, String?)] {
            var buffer = ByteBuffer()
            buffer.writeMessage(subject: "s", sid: 1, replyTo: nil,
                                headers: NATSHeaders(status: status, statusDescription: description), payload: [])
            let message = try #require(try onlyMessage(String(buffer: buffer)))
            #expect(message.status == status)
            #expect(message.headers?.statusDescription == description)
        }
    }

    @Test func encodedSizeMatchesTheBytesWritten() {
        var variants = Self.headerVariants.compactMap { $0 }
        // A description without a status cannot be sent; it must not be counted either.
        variants.append(NATSHeaders(status: nil, statusDescription: "dropped"))
        for headers in variants {
            var buffer = ByteBuffer()
            headers.write(into: &buffer)
            #expect(headers.encodedSize == buffer.readableBytes, "\(headers)")
        }
    }

    @Test func descriptionWithoutStatusStillMakesAValidFrame() throws {
        let headers = NATSHeaders(status: nil, statusDescription: "dropped")
        var buffer = ByteBuffer()
        buffer.writeMessage(subject: "s", sid: 1, replyTo: nil, headers: headers, payload: Array("body".utf8))
        buffer.writePing()
        let ops = try serverOps(Array(buffer: buffer))
        #expect(ops == [.msg(NATSMessage(subject: "s", sid: 1, replyTo: nil, headers: NATSHeaders(), payload: ByteBuffer(string: "body"))),
                        .ping])
        buffer.clear()
        buffer.writePublish(subject: "s", replyTo: nil, headers: headers, payload: Array("body".utf8))
        #expect(try clientOps(Array(buffer: buffer))
            == [.pub(subject: "s", replyTo: nil, headers: NATSHeaders(), payload: ByteBuffer(string: "body"))])
    }

    @Test func infoRoundTrips() throws {
        let full = ServerInfo(
            serverID: "NCXM", serverName: "n1", version: "2.10.7", host: "0.0.0.0", port: 4222, headers: true,
            maxPayload: 8 * 1024 * 1024, proto: 1, clientID: 42, authRequired: true, tlsRequired: true, tlsVerify: true,
            tlsAvailable: true, connectURLs: ["10.0.0.1:4222", "[::1]:4223"], lameDuckMode: true, jetStream: true,
            nonce: "n0nce", cluster: "c", domain: "d", clientIP: "127.0.0.1")
        for info in [ServerInfo(serverID: "x", version: "1"), full] {
            var buffer = ByteBuffer()
            try buffer.writeInfo(info)
            #expect(String(buffer: buffer).hasPrefix("INFO {"))
            #expect(try serverOps(Array(buffer: buffer)) == [.info(info)])
        }
    }

    @Test func okAndErrorRoundTrip() throws {
        var buffer = ByteBuffer()
        buffer.writeOK()
        for message in ["Authorization Violation", "Permissions Violation for Publish to \"a.b\"", "", "it's", "'quoted'"] {
            buffer.writeError(message)
        }
        #expect(try serverOps(Array(buffer: buffer)) == [
            .ok, .err("Authorization Violation"), .err("Permissions Violation for Publish to \"a.b\""), .err(""),
            .err("it's"), .err("'quoted'"),
        ])
    }

    @Test func writeDecimalWritesEveryWidth() {
        var value = 0
        var values = [0, 1, 9]
        for _ in 0..<19 {
            value = value == 0 ? 10 : value &* 10
            guard value > 0 else { break }
            values += [value - 1, value, value + 1]
        }
        values.append(Int.max)
        for value in values {
            var buffer = ByteBuffer()
            buffer.writeDecimal(value)
            #expect(String(buffer: buffer) == String(value))
        }
    }

    @Test func randomOpsRoundTrip() throws {
        var random = RandomFrames(seed: 0xC0DEC)
        for _ in 0..<100 {
            let server = random.serverStream(ops: 10)
            #expect(try serverOps(server.bytes) == server.ops)
            let client = random.clientStream(ops: 10)
            #expect(try clientOps(client.bytes) == client.ops)
        }
    }
}
