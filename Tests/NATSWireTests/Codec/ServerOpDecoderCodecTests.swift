import NIOCore
import Testing
@testable import NATSWire

/// What ``ServerOpDecoder`` makes of well-formed server operations.
@Suite struct ServerOpDecoderCodecTests {
    // MARK: INFO

    @Test func infoParsesTheFieldsARealServerSends() throws {
        let line = """
            INFO {"server_id":"NCXMJZYQEWUDJFLYLSTTE745I2WUNCVG3LJJ3NRKSFJXEG6RGK7753DJ","server_name":"hub-1",\
            "version":"2.10.7","proto":1,"git_commit":"fe2c116","go":"go1.21.5","host":"0.0.0.0","port":4222,\
            "headers":true,"max_payload":1048576,"jetstream":true,"client_id":5,"client_ip":"127.0.0.1",\
            "nonce":"fAbTrTu6Zdf1yGo","connect_urls":["10.0.0.1:4222","[::1]:4222"],"ldm":true,"cluster":"c1",\
            "domain":"hub","auth_required":true,"tls_required":false,"tls_verify":false,"tls_available":true,\
            "xkey":"XAB3NANV3M6N7AHSQP2U5FRWKKUT7EG2ZXXABV4XVXYQRJGM4S2CZGHT"}\r\n
            """
        let ops = try serverOps(line)
        guard ops.count == 1, case .info(let info) = ops[0] else {
            Issue.record("expected INFO, got \(ops)")
            return
        }
        #expect(info.serverID == "NCXMJZYQEWUDJFLYLSTTE745I2WUNCVG3LJJ3NRKSFJXEG6RGK7753DJ")
        #expect(info.serverName == "hub-1")
        #expect(info.version == "2.10.7")
        #expect(info.proto == 1)
        #expect(info.host == "0.0.0.0")
        #expect(info.port == 4222)
        #expect(info.headers)
        #expect(info.maxPayload == 1_048_576)
        #expect(info.jetStream)
        #expect(info.clientID == 5)
        #expect(info.clientIP == "127.0.0.1")
        #expect(info.nonce == "fAbTrTu6Zdf1yGo")
        #expect(info.connectURLs == ["10.0.0.1:4222", "[::1]:4222"])
        #expect(info.lameDuckMode)
        #expect(info.cluster == "c1")
        #expect(info.domain == "hub")
        #expect(info.authRequired)
        #expect(!info.tlsRequired)
        #expect(!info.tlsVerify)
        #expect(info.tlsAvailable)
    }

    @Test func infoWithAnEmptyObjectGetsDefaults() throws {
        let ops = try serverOps("INFO {}\r\n")
        guard case .info(let info) = ops.first else {
            Issue.record("expected INFO, got \(ops)")
            return
        }
        #expect(info.serverID == "")
        #expect(info.maxPayload == 1_048_576)
        #expect(info.connectURLs == [])
        #expect(!info.lameDuckMode)
        #expect(info.nonce == nil)
        #expect(info.proto == 0)
    }

    @Test func infoLameDuckUpdateAlone() throws {
        let ops = try serverOps("INFO\t {\"ldm\":true, \"connect_urls\" : [\"a:1\"]}\r\n")
        guard case .info(let info) = ops.first else {
            Issue.record("expected INFO, got \(ops)")
            return
        }
        #expect(info.lameDuckMode)
        #expect(info.connectURLs == ["a:1"])
    }

    // MARK: MSG

    @Test func msgWithoutReply() throws {
        let message = try #require(try onlyMessage("MSG foo.bar 9 5\r\nhello\r\n"))
        #expect(message.subject == "foo.bar")
        #expect(message.sid == 9)
        #expect(message.replyTo == nil)
        #expect(message.headers == nil)
        #expect(message.status == nil)
        #expect(message.string == "hello")
    }

    @Test func msgWithReply() throws {
        let message = try #require(try onlyMessage("MSG foo.bar 90 _INBOX.abc.1 11\r\nHello World\r\n"))
        #expect(message.subject == "foo.bar")
        #expect(message.sid == 90)
        #expect(message.replyTo == "_INBOX.abc.1")
        #expect(message.string == "Hello World")
    }

    @Test(arguments: [0, 1, 2, 1023, 65_536, 1_000_000])
    func msgPayloadSizes(size: Int) throws {
        var rng = SeededGenerator(seed: UInt64(size))
        var payload = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
        if size >= 2 { payload[(size - 2) / 2] = 0x0D; payload[(size - 2) / 2 + 1] = 0x0A }  // CRLF inside
        var buffer = ByteBuffer(string: "MSG big 1 \(size)\r\n")
        buffer.writeBytes(payload)
        buffer.writeString("\r\nPING\r\n")
        let ops = try serverOps(Array(buffer: buffer))
        #expect(ops.count == 2)
        guard case .msg(let message) = ops.first else {
            Issue.record("expected MSG, got \(ops)")
            return
        }
        #expect(message.payload.readableBytes == size)
        #expect(Array(buffer: message.payload) == payload)
        #expect(ops.last == .ping)
    }

    @Test func msgPayloadMayHoldProtocolText() throws {
        let message = try #require(try onlyMessage("MSG a 1 13\r\nPING\r\nMSG\r\n\r\n\r\n"))
        #expect(message.string == "PING\r\nMSG\r\n\r\n")
    }

    @Test func msgPayloadAtExactlyMaxPayloadIsAccepted() throws {
        let ops = try serverOps("MSG a 1 4\r\nabcd\r\n", ServerOpDecoder(maxPayload: 4))
        #expect(ops.count == 1)
    }

    // MARK: HMSG

    @Test func hmsgWithoutReplyAndNoPayload() throws {
        let message = try #require(try onlyMessage("HMSG foo 1 12 12\r\nNATS/1.0\r\n\r\n\r\n"))
        #expect(message.subject == "foo")
        #expect(message.sid == 1)
        #expect(message.replyTo == nil)
        #expect(message.headers == NATSHeaders())
        #expect(message.headers?.isEmpty == true)
        #expect(message.status == nil)
        #expect(message.payload.readableBytes == 0)
    }

    @Test func hmsgWithReplyFieldsAndPayload() throws {
        let block = "NATS/1.0\r\nBar: Baz\r\nbar: second\r\nNats-Msg-Id: 7\r\n\r\n"
        let text = hmsg("FOO.x", 22, reply: "_INBOX.r", headers: block, payload: "Hello NATS!")
        let message = try #require(try onlyMessage(text))
        #expect(message.subject == "FOO.x")
        #expect(message.sid == 22)
        #expect(message.replyTo == "_INBOX.r")
        #expect(message.string == "Hello NATS!")
        let headers = try #require(message.headers)
        #expect(headers.fields == [
            .init(name: "Bar", value: "Baz"), .init(name: "bar", value: "second"), .init(name: "Nats-Msg-Id", value: "7"),
        ])
        #expect(headers["BAR"] == "Baz")
        #expect(headers.values(for: "bar") == ["Baz", "second"])
        #expect(headers.status == nil)
    }

    @Test func hmsgDigestExample() throws {
        // The digest's HPUB example, as the server delivers it.
        let message = try #require(try onlyMessage("HMSG FOO 1 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n"))
        #expect(message.headers?["Bar"] == "Baz")
        #expect(message.string == "Hello NATS!")
    }

    @Test func hmsgNoRespondersStatus() throws {
        let message = try #require(try onlyMessage(hmsg("_INBOX.x.y", 3, headers: "NATS/1.0 503\r\n\r\n")))
        #expect(message.status == 503)
        #expect(message.headers?.statusDescription == nil)
        #expect(message.headers?.fields == [])
        #expect(message.headers?.isEmpty == false)
        #expect(message.payload.readableBytes == 0)
    }

    @Test func hmsgStatusWithDescription() throws {
        let message = try #require(try onlyMessage(
            hmsg("_INBOX.x.y", 3, reply: "r", headers: "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n")))
        #expect(message.status == 408)
        #expect(message.headers?.statusDescription == "Request Timeout")
        #expect(message.headers?["nats-pending-messages"] == "1")
        #expect(message.replyTo == "r")
    }

    @Test func hmsgStatusSeparatedByTabsAndSpaces() throws {
        let message = try #require(try onlyMessage(hmsg("s", 3, headers: "NATS/1.0\t100  Idle Heartbeat\r\n\r\n")))
        #expect(message.status == 100)
        #expect(message.headers?.statusDescription == "Idle Heartbeat")
    }

    @Test func hmsgFieldValuesAreTrimmedAndMayHoldColons() throws {
        let message = try #require(try onlyMessage(hmsg("s", 3, headers: "NATS/1.0\r\nA:\t x:y:z \t\r\nEmpty:\r\n\r\n")))
        #expect(message.headers?["a"] == "x:y:z")
        #expect(message.headers?["empty"] == "")
    }

    @Test func hmsgHeaderValuesMayBeUTF8() throws {
        let message = try #require(try onlyMessage(hmsg("s", 3, headers: "NATS/1.0\r\nGreeting: grüße 🌍\r\n\r\n")))
        #expect(message.headers?["greeting"] == "grüße 🌍")
    }

    // MARK: Small ops

    @Test func pingPongOK() throws {
        #expect(try serverOps("PING\r\nPONG\r\n+OK\r\n") == [.ping, .pong, .ok])
    }

    @Test func errStripsQuotes() throws {
        #expect(try serverOps("-ERR 'Authorization Violation'\r\n") == [.err("Authorization Violation")])
        #expect(try serverOps("-ERR 'Stale Connection'  \r\n") == [.err("Stale Connection")])
        #expect(try serverOps("-ERR\t\t'Permissions Violation for Publish to \"x\"'\r\n")
            == [.err("Permissions Violation for Publish to \"x\"")])
        #expect(try serverOps("-ERR ''\r\n") == [.err("")])
        #expect(try serverOps("-ERR unquoted text\r\n") == [.err("unquoted text")])
        #expect(try serverOps("-ERR\r\n") == [.err("")])
        #expect(try serverOps("-ERR '\r\n") == [.err("'")])
    }

    @Test func lineFeedAloneEndsALine() throws {
        #expect(try serverOps("PING\nPONG\n") == [.ping, .pong])
        // Trailing blanks after PING/PONG are tolerated, as nats-server does.
        #expect(try serverOps("PING \r\nPONG\t\r\n") == [.ping, .pong])
        #expect(try clientOps("PING  \r\nPONG \r\n") == [.ping, .pong])
    }

    // MARK: Case and blanks

    @Test(arguments: ["msg", "Msg", "mSg", "MSG"])
    func opNamesIgnoreCase(op: String) throws {
        let message = try #require(try onlyMessage("\(op) a 1 2\r\nhi\r\n"))
        #expect(message.string == "hi")
    }

    @Test func otherOpNamesIgnoreCase() throws {
        #expect(try serverOps("ping\r\nPing\r\npong\r\n+ok\r\n-err 'x'\r\n") == [.ping, .ping, .pong, .ok, .err("x")])
        let ops = try serverOps("info {\"max_payload\":5}\r\n" + "hmsg s 1 12 12\r\nNATS/1.0\r\n\r\n\r\n")
        #expect(ops.count == 2)
        guard case .info(let info) = ops[0], case .msg(let message) = ops[1] else {
            Issue.record("unexpected \(ops)")
            return
        }
        #expect(info.maxPayload == 5)
        #expect(message.headers == NATSHeaders())
    }

    @Test func fieldsMaySeparateByTabsAndRunsOfBlanks() throws {
        let message = try #require(try onlyMessage("MSG\tfoo  \t 7\t\t_INBOX.r   3 \t \r\nabc\r\n"))
        #expect(message.subject == "foo")
        #expect(message.sid == 7)
        #expect(message.replyTo == "_INBOX.r")
        #expect(message.string == "abc")

        let headered = try #require(try onlyMessage("HMSG \t s \t 8 \t 12 \t 13\t\r\nNATS/1.0\r\n\r\nx\r\n"))
        #expect(headered.subject == "s")
        #expect(headered.sid == 8)
        #expect(headered.replyTo == nil)
        #expect(headered.string == "x")
    }

    // MARK: Decoder contract

    @Test func partialFramesAreNotConsumed() throws {
        var decoder = ServerOpDecoder()
        for partial in ["", "P", "PIN", "PING\r", "MSG a 1 5\r\n", "MSG a 1 5\r\nhel", "MSG a 1 5\r\nhello", "MSG a 1 5\r\nhello\r"] {
            var buffer = ByteBuffer(string: partial)
            #expect(try decoder.decode(buffer: &buffer) == nil, "\(partial.debugDescription)")
            #expect(buffer.readableBytes == partial.utf8.count, "nothing consumed from \(partial.debugDescription)")
        }
    }

    @Test func decodeConsumesExactlyOneFrame() throws {
        var decoder = ServerOpDecoder()
        var buffer = ByteBuffer(string: "MSG a 1 2\r\nhi\r\nPING\r\nPO")
        let first = try decoder.decode(buffer: &buffer)
        guard case .msg(let message) = first else {
            Issue.record("expected MSG, got \(String(describing: first))")
            return
        }
        #expect(message.string == "hi")
        #expect(buffer.readableBytes == 8)
        #expect(try decoder.decode(buffer: &buffer) == .ping)
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(String(buffer: buffer) == "PO")
        #expect(throws: NATSProtocolError.self) { _ = try decoder.decodeLast(buffer: &buffer, seenEOF: true) }
        var empty = ByteBuffer()
        #expect(try decoder.decodeLast(buffer: &empty, seenEOF: true) == nil)
    }

    @Test func controlLineOfExactlyTheLimitIsAccepted() throws {
        let subject = String(repeating: "s", count: 64 - "MSG  1 0".count)
        let line = "MSG \(subject) 1 0"
        #expect(line.utf8.count == 64)
        let ops = try serverOps(line + "\r\n\r\n", ServerOpDecoder(maxControlLine: 64))
        #expect(ops.count == 1)
    }

    @Test func readerLimitsCanChangeBetweenReads() throws {
        var reader = FrameReader(ServerOpDecoder())
        var ops: [ServerOp] = []
        try reader.read(ByteBuffer(string: "INFO {\"max_payload\":4}\r\n")) { ops.append($0) }
        guard case .info(let info) = ops.first else {
            Issue.record("expected INFO")
            return
        }
        reader.decoder.maxPayload = info.maxPayload
        try reader.read(ByteBuffer(string: "MSG a 1 4\r\nabcd\r\n")) { ops.append($0) }
        #expect(ops.count == 2)
        let error = protocolError { try reader.read(ByteBuffer(string: "MSG a 1 5\r\n")) { ops.append($0) } }
        #expect(error?.kind == .payloadTooLarge(size: 5, limit: 4))
    }

    @Test func readerBuffersOnlyTheUnfinishedTail() throws {
        var reader = FrameReader(ServerOpDecoder())
        var ops: [ServerOp] = []
        try reader.read(ByteBuffer(string: "PING\r\nMSG a 1 5\r\nhe")) { ops.append($0) }
        #expect(ops == [.ping])
        #expect(reader.bufferedBytes == "MSG a 1 5\r\nhe".utf8.count)
        try reader.read(ByteBuffer(string: "llo")) { ops.append($0) }
        #expect(ops.count == 1)
        try reader.read(ByteBuffer(string: "\r\n")) { ops.append($0) }
        #expect(ops.count == 2)
        #expect(reader.bufferedBytes == 0)
        try reader.finish { ops.append($0) }
        #expect(ops.count == 2)
    }
}
