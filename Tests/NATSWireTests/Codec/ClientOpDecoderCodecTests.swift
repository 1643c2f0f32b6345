import NIOCore
import Testing
@testable import NATSWire

/// What ``ClientOpDecoder`` makes of well-formed client operations.
@Suite struct ClientOpDecoderCodecTests {
    @Test func connectParsesTheFieldsNatsGoSends() throws {
        let line = """
            CONNECT {"verbose":false,"pedantic":true,"tls_required":false,"name":"svc","lang":"go",\
            "version":"1.31.0","protocol":1,"echo":false,"headers":true,"no_responders":true,"user":"u",\
            "pass":"p w","auth_token":"tok","nkey":"UABC","jwt":"eyJ0","sig":"c2ln","unknown_field":[1,2]}\r\n
            """
        let ops = try clientOps(line)
        guard ops.count == 1, case .connect(let info) = ops[0] else {
            Issue.record("expected CONNECT, got \(ops)")
            return
        }
        #expect(!info.verbose)
        #expect(info.pedantic)
        #expect(!info.tlsRequired)
        #expect(info.name == "svc")
        #expect(info.lang == "go")
        #expect(info.version == "1.31.0")
        #expect(info.protocol == 1)
        #expect(!info.echo)
        #expect(info.headers)
        #expect(info.noResponders)
        #expect(info.user == "u")
        #expect(info.pass == "p w")
        #expect(info.authToken == "tok")
        #expect(info.nkey == "UABC")
        #expect(info.jwt == "eyJ0")
        #expect(info.sig == "c2ln")
    }

    @Test func connectWithAnEmptyObjectGetsDefaults() throws {
        guard case .connect(let info) = try clientOps("CONNECT {}\r\n").first else {
            Issue.record("expected CONNECT")
            return
        }
        #expect(info.protocol == 0)
        #expect(info.echo)
        #expect(!info.headers)
        #expect(info.name == nil)
    }

    @Test func connectThenPingInOneWrite() throws {
        // nats.go's handshake.
        let ops = try clientOps("CONNECT {\"verbose\":true}\r\nPING\r\n")
        #expect(ops.count == 2)
        #expect(ops.last == .ping)
    }

    @Test func pubWithoutReply() throws {
        #expect(try clientOps("PUB foo.bar 5\r\nhello\r\n")
            == [.pub(subject: "foo.bar", replyTo: nil, headers: nil, payload: ByteBuffer(string: "hello"))])
    }

    @Test func pubWithReply() throws {
        #expect(try clientOps("PUB foo.bar _INBOX.x.y 5\r\nhello\r\n")
            == [.pub(subject: "foo.bar", replyTo: "_INBOX.x.y", headers: nil, payload: ByteBuffer(string: "hello"))])
    }

    @Test(arguments: [0, 1, 4096, 1_048_576])
    func pubPayloadSizes(size: Int) throws {
        var rng = SeededGenerator(seed: UInt64(size) &+ 7)
        let payload = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var buffer = ByteBuffer(string: "PUB big \(size)\r\n")
        buffer.writeBytes(payload)
        buffer.writeString("\r\n")
        #expect(try clientOps(Array(buffer: buffer))
            == [.pub(subject: "big", replyTo: nil, headers: nil, payload: ByteBuffer(bytes: payload))])
    }

    @Test func hpubWithoutReply() throws {
        // The digest's example.
        let ops = try clientOps("HPUB FOO 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n")
        #expect(ops == [.pub(subject: "FOO", replyTo: nil, headers: NATSHeaders(["Bar": "Baz"]),
                             payload: ByteBuffer(string: "Hello NATS!"))])
    }

    @Test func hpubWithReplyAndRepeatedFields() throws {
        let text = hpub("FOO", reply: "INBOX.22", headers: "NATS/1.0\r\nBar: Baz\r\nBAR: Qux\r\n\r\n", payload: "x")
        let ops = try clientOps(text)
        #expect(ops == [.pub(subject: "FOO", replyTo: "INBOX.22", headers: NATSHeaders(["Bar": "Baz", "BAR": "Qux"]),
                             payload: ByteBuffer(string: "x"))])
    }

    @Test func hpubWithOnlyHeaders() throws {
        let ops = try clientOps("HPUB s 12 12\r\nNATS/1.0\r\n\r\n\r\n")
        #expect(ops == [.pub(subject: "s", replyTo: nil, headers: NATSHeaders(), payload: ByteBuffer())])
    }

    @Test func subWithoutQueue() throws {
        #expect(try clientOps("SUB foo.* 1\r\n") == [.sub(subject: "foo.*", queue: nil, sid: "1")])
    }

    @Test func subWithQueue() throws {
        #expect(try clientOps("SUB foo.> workers 42\r\n") == [.sub(subject: "foo.>", queue: "workers", sid: "42")])
    }

    @Test func unsubWithoutMax() throws {
        #expect(try clientOps("UNSUB 1\r\n") == [.unsub(sid: "1", max: nil)])
    }

    @Test func unsubWithMax() throws {
        #expect(try clientOps("UNSUB 1 5\r\nUNSUB 2 0\r\n") == [.unsub(sid: "1", max: 5), .unsub(sid: "2", max: 0)])
    }

    @Test func pingPong() throws {
        #expect(try clientOps("PING\r\nPONG\r\n") == [.ping, .pong])
    }

    @Test func opNamesIgnoreCase() throws {
        let ops = try clientOps("pub a 1\r\nx\r\nPub a 1\r\ny\r\nhpub a 12 12\r\nNATS/1.0\r\n\r\n\r\nsub a 1\r\nUnSub 1\r\nping\r\nPoNg\r\nconnect {}\r\n")
        #expect(ops.count == 8)
        #expect(ops[0] == .pub(subject: "a", replyTo: nil, headers: nil, payload: ByteBuffer(string: "x")))
        #expect(ops[1] == .pub(subject: "a", replyTo: nil, headers: nil, payload: ByteBuffer(string: "y")))
        #expect(ops[2] == .pub(subject: "a", replyTo: nil, headers: NATSHeaders(), payload: ByteBuffer()))
        #expect(ops[3] == .sub(subject: "a", queue: nil, sid: "1"))
        #expect(ops[4] == .unsub(sid: "1", max: nil))
        #expect(ops[5] == .ping)
        #expect(ops[6] == .pong)
        guard case .connect = ops[7] else {
            Issue.record("expected CONNECT, got \(ops[7])")
            return
        }
    }

    @Test func fieldsMaySeparateByTabsAndRunsOfBlanks() throws {
        let ops = try clientOps(
            "PUB\t a \t\tr  3 \r\nabc\r\nSUB  a\tq \t 9\t\r\nUNSUB\t9  \t2 \r\nHPUB \ta\t 12 \t12\t\r\nNATS/1.0\r\n\r\n\r\n")
        #expect(ops == [
            .pub(subject: "a", replyTo: "r", headers: nil, payload: ByteBuffer(string: "abc")),
            .sub(subject: "a", queue: "q", sid: "9"),
            .unsub(sid: "9", max: 2),
            .pub(subject: "a", replyTo: nil, headers: NATSHeaders(), payload: ByteBuffer()),
        ])
    }

    @Test func partialFramesAreNotConsumed() throws {
        var decoder = ClientOpDecoder()
        for partial in ["", "S", "SUB a 1", "SUB a 1\r", "PUB a 5\r\nhel", "PUB a 5\r\nhello\r", "HPUB a 12 12\r\nNATS"] {
            var buffer = ByteBuffer(string: partial)
            #expect(try decoder.decode(buffer: &buffer) == nil, "\(partial.debugDescription)")
            #expect(buffer.readableBytes == partial.utf8.count)
        }
    }
}
