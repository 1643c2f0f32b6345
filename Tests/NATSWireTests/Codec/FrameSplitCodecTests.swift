import NIOCore
import Testing
@testable import NATSWire

/// Pipelined frames, and the same streams split at every byte and at random places.
@Suite struct FrameSplitCodecTests {
    /// A small hand-written server stream with every op, odd blanks and case, and CRLF inside payloads.
    static let smallServerStream = Array((
        "INFO {\"server_id\":\"S\",\"max_payload\":1024,\"connect_urls\":[\"a:1\"]}\r\n"
        + "+OK\r\nping\r\nPONG\r\n"
        + "MSG a.b 1 0\r\n\r\n"
        + "msg\ta.b  2 _INBOX.x 4\r\n\r\n\r\n\r\n"
        + hmsg("h", 3, reply: "r", headers: "NATS/1.0 503\r\n\r\n")
        + hmsg("h", 4, headers: "NATS/1.0\r\nA: 1\r\na: 2\r\n\r\n", payload: "MSG\r\n")
        + "-ERR 'Slow Consumer'\r\n"
        + "HMSG h 5 8 24\r\nNATS\r\n\r\nsixteen bytes!!!\r\n"  // malformed headers: consumed, reported
        + "PING\r\n"
    ).utf8)

    static let smallClientStream = Array((
        "CONNECT {\"verbose\":false,\"protocol\":1,\"name\":\"n\"}\r\nPING\r\n"
        + "SUB a.* 1\r\nsub a.> q  2\r\n"
        + "PUB a.b 0\r\n\r\n"
        + "pub\ta.b r 5\r\nPUB\r\n\r\n"
        + hpub("a.b", reply: "r", headers: "NATS/1.0\r\nX: y\r\nx: z\r\n\r\n", payload: "\r\n")
        + hpub("a.b", headers: "NATS/1.0\r\n\r\n")
        + "UNSUB 1\r\nUNSUB 2 10\r\nPONG\r\n"
    ).utf8)

    @Test func smallStreamsDecodeToTheExpectedOps() throws {
        let server = try serverOps(Self.smallServerStream)
        #expect(server.count == 11)
        #expect(Array(server[1...3]) == [.ok, .ping, .pong])
        guard case .malformedMessage(let sid, let subject, let error) = server[9] else {
            Issue.record("expected a malformed message, got \(server[9])")
            return
        }
        #expect(sid == 5)
        #expect(subject == "h")
        #expect(error.kind.name == "invalidHeaders")
        #expect(server[10] == .ping)

        let client = try clientOps(Self.smallClientStream)
        #expect(client.count == 11)
        #expect(client[5] == .pub(subject: "a.b", replyTo: "r", headers: nil, payload: ByteBuffer(string: "PUB\r\n")))
        #expect(client.last == .pong)
    }

    @Test func manyPipelinedFramesInOneBuffer() throws {
        var buffer = ByteBuffer()
        var expected: [ServerOp] = []
        for index in 0..<2000 {
            let payload = Array("payload \(index)\r\n".utf8)
            switch index % 4 {
            case 0:
                buffer.writeMessage(subject: "s.\(index)", sid: index, replyTo: nil, headers: nil, payload: payload)
                expected.append(.msg(NATSMessage(subject: "s.\(index)", sid: index, replyTo: nil, headers: nil,
                                                 payload: ByteBuffer(bytes: payload))))
            case 1:
                let headers = NATSHeaders(["N": String(index)])
                buffer.writeMessage(subject: "s", sid: index, replyTo: "r.\(index)", headers: headers, payload: payload)
                expected.append(.msg(NATSMessage(subject: "s", sid: index, replyTo: "r.\(index)", headers: headers,
                                                 payload: ByteBuffer(bytes: payload))))
            case 2:
                buffer.writePing()
                expected.append(.ping)
            default:
                buffer.writeError("e\(index)")
                expected.append(.err("e\(index)"))
            }
        }
        let bytes = Array(buffer: buffer)
        #expect(try serverOps(bytes) == expected)
        #expect(try readInPieces(ServerOpDecoder(), bytes) == expected)
        // Socket-sized reads.
        let cuts = Array(stride(from: 1500, to: bytes.count, by: 1500))
        #expect(try readInPieces(ServerOpDecoder(), bytes, cuts: cuts) == expected)
    }

    @Test func serverStreamCutAtEveryBytePosition() throws {
        let bytes = Self.smallServerStream
        let whole = try serverOps(bytes)
        for cut in 0...bytes.count {
            let ops = try readInPieces(ServerOpDecoder(), bytes, cuts: [cut])
            #expect(ops == whole, "cut at \(cut)")
        }
        for cut in 0..<bytes.count {
            let ops = try readInPieces(ServerOpDecoder(), bytes, cuts: [cut, cut + 1])
            #expect(ops == whole, "single byte read at \(cut)")
        }
        // One byte per read.
        #expect(try readInPieces(ServerOpDecoder(), bytes, cuts: Array(0...bytes.count)) == whole)
    }

    @Test func clientStreamCutAtEveryBytePosition() throws {
        let bytes = Self.smallClientStream
        let whole = try clientOps(bytes)
        for cut in 0...bytes.count {
            let ops = try readInPieces(ClientOpDecoder(), bytes, cuts: [cut])
            #expect(ops == whole, "cut at \(cut)")
        }
        #expect(try readInPieces(ClientOpDecoder(), bytes, cuts: Array(0...bytes.count)) == whole)
    }

    @Test func everyPrefixEndsCleanlyOnlyAtFrameBoundaries() throws {
        var random = RandomFrames(seed: 99)
        let stream = random.serverStream(ops: 12)
        for length in 0...stream.bytes.count {
            let prefix = Array(stream.bytes[0..<length])
            let complete = stream.frameEnds.filter { $0 <= length }.count
            var reader = FrameReader(ServerOpDecoder())
            var ops: [ServerOp] = []
            try reader.read(ByteBuffer(bytes: prefix)) { ops.append($0) }
            #expect(ops == Array(stream.ops.prefix(complete)), "prefix of \(length)")
            let atBoundary = length == 0 || stream.frameEnds.contains(length)
            if atBoundary {
                #expect(reader.bufferedBytes == 0)
                try reader.finish { ops.append($0) }
            } else {
                let error = protocolError { try reader.finish { ops.append($0) } }
                #expect(error?.kind == .truncatedFrame, "prefix of \(length)")
                if let error { #expect(isShortPrintableSummary(error.offendingBytes)) }
            }
        }
    }

    @Test func randomServerStreamsSplitAtRandomPlaces() throws {
        var random = RandomFrames(seed: 0x5EED_0001)
        for round in 0..<300 {
            let stream = random.serverStream(ops: random.int(1...12))
            let whole = try serverOps(stream.bytes)
            #expect(whole == stream.ops, "round \(round)")
            let cuts = random.cuts(in: stream.bytes.count, count: random.int(1...20))
            let pieces = try readInPieces(ServerOpDecoder(), stream.bytes, cuts: cuts)
            #expect(pieces == whole, "round \(round), cuts \(cuts)")
        }
    }

    @Test func randomClientStreamsSplitAtRandomPlaces() throws {
        var random = RandomFrames(seed: 0x5EED_0002)
        for round in 0..<300 {
            let stream = random.clientStream(ops: random.int(1...12))
            let whole = try clientOps(stream.bytes)
            #expect(whole == stream.ops, "round \(round)")
            let cuts = random.cuts(in: stream.bytes.count, count: random.int(1...20))
            let pieces = try readInPieces(ClientOpDecoder(), stream.bytes, cuts: cuts)
            #expect(pieces == whole, "round \(round), cuts \(cuts)")
        }
    }

    @Test func largeFrameArrivingInManySmallReads() throws {
        var rng = SeededGenerator(seed: 3)
        let payload = (0..<300_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var buffer = ByteBuffer()
        buffer.writeMessage(subject: "big", sid: 1, replyTo: nil, headers: NATSHeaders(["K": "v"]), payload: payload)
        buffer.writePong()
        let bytes = Array(buffer: buffer)
        let cuts = Array(stride(from: 7, to: bytes.count, by: 4093))
        let ops = try readInPieces(ServerOpDecoder(), bytes, cuts: cuts)
        #expect(ops == [.msg(NATSMessage(subject: "big", sid: 1, replyTo: nil, headers: NATSHeaders(["K": "v"]),
                                         payload: ByteBuffer(bytes: payload))), .pong])
    }

    @Test func decodedPayloadsSurviveLaterReads() throws {
        // Payloads are slices of read buffers: later reads must not change them.
        var reader = FrameReader(ServerOpDecoder())
        var ops: [ServerOp] = []
        try reader.read(ByteBuffer(string: "MSG a 1 3\r\nabc\r\nMSG a 1 3\r\nd")) { ops.append($0) }
        try reader.read(ByteBuffer(string: "ef\r\nMSG a 1 3\r\nghi\r\nMS")) { ops.append($0) }
        try reader.read(ByteBuffer(string: "G a 1 3\r\njkl\r\n")) { ops.append($0) }
        try reader.finish { ops.append($0) }
        let payloads = ops.compactMap { op -> String? in
            guard case .msg(let message) = op else { return nil }
            return message.string
        }
        #expect(payloads == ["abc", "def", "ghi", "jkl"])
    }
}
