import NIOCore
import Testing
@testable import NATSWire

/// Malformed input: each case throws the specific ``NATSProtocolError/Kind`` with a short,
/// printable summary of the offending bytes.
@Suite struct BadInputCodecTests {
    /// Checks the kind (by case; reasons are free text) and the summary.
    func check(
        _ error: NATSProtocolError?, _ kind: NATSProtocolError.Kind, offending: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let error else { return }  // already recorded
        #expect(error.kind.name == kind.name, "\(error)", sourceLocation: sourceLocation)
        if case .invalidHeaders = kind {} else if case .invalidJSON = kind {} else {
            #expect(error.kind == kind, sourceLocation: sourceLocation)
        }
        #expect(isShortPrintableSummary(error.offendingBytes), "\(error.offendingBytes)", sourceLocation: sourceLocation)
        if let offending {
            #expect(error.offendingBytes == offending, sourceLocation: sourceLocation)
        }
        #expect(error.description.hasSuffix("near \"\(error.offendingBytes)\""), sourceLocation: sourceLocation)
    }

    // MARK: Unknown operations

    @Test func garbageOperation() {
        check(serverError("FOO bar\r\n"), .unknownOperation, offending: "FOO bar")
        check(clientError("FOO bar\r\n"), .unknownOperation, offending: "FOO bar")
    }

    @Test func opsOfTheOtherSideAreUnknown() {
        check(serverError("PUB a 1\r\nx\r\n"), .unknownOperation, offending: "PUB a 1")
        check(serverError("CONNECT {}\r\n"), .unknownOperation)
        check(clientError("MSG a 1 1\r\nx\r\n"), .unknownOperation)
        check(clientError("INFO {}\r\n"), .unknownOperation)
        check(clientError("+OK\r\n"), .unknownOperation)
        check(clientError("-ERR 'x'\r\n"), .unknownOperation)
    }

    @Test func nearMissesAreUnknown() {
        for line in ["PINGPONG", "PIN", "MSGX a 1 0", " PING", "", "INFO{}", "+OKAY", "\u{0}PING", "HMS a 1 0 0"] {
            check(serverError(line + "\r\n"), .unknownOperation)
        }
        for line in ["PUBX a 0", "SUBS a 1", "CONNECT{}", "\tSUB a 1", "UN SUB 1"] {
            check(clientError(line + "\r\n"), .unknownOperation)
        }
    }

    @Test func controlCharactersDoNotPassForPunctuation() {
        // Case folding must apply to letters only: CR is '-' with bit 5 cleared, VT is '+'.
        check(serverError("\rERR 'x'\r\n"), .unknownOperation, offending: "\\rERR 'x'")
        check(serverError("\u{0B}OK\r\n"), .unknownOperation, offending: "\\x0BOK")
        check(serverError("\u{0D}OK\r\n"), .unknownOperation)
        // And the version line of a header block: '/' with bit 5 cleared is 0x0F.
        let ops = try? serverOps(hmsg("s", 1, headers: "NATS\u{0F}1.0\r\n\r\n"))
        guard case .malformedMessage(_, _, let error) = ops?.first else {
            Issue.record("expected a malformed message, got \(String(describing: ops))")
            return
        }
        check(error, .invalidHeaders(reason: ""))
    }

    @Test func extraArgumentsToPingAndPong() {
        check(serverError("PING x\r\n"), .invalidArguments, offending: "PING x")
        check(serverError("PONG 1\r\n"), .invalidArguments)
        check(clientError("PING x\r\n"), .invalidArguments)
        check(clientError("PONG\t1\r\n"), .invalidArguments)
    }

    // MARK: Control line length

    @Test func controlLineOverTheLimitWithoutCRLF() {
        let long = "MSG " + String(repeating: "x", count: 40)
        let error = serverError(long, ServerOpDecoder(maxControlLine: 16))
        check(error, .controlLineTooLong(limit: 16))
        #expect(error?.offendingBytes.hasPrefix("MSG xxx") == true)
        check(clientError(long, ClientOpDecoder(maxControlLine: 16)), .controlLineTooLong(limit: 16))
    }

    @Test func controlLineOverTheDefaultLimitIsSummarizedShortly() {
        let long = String(repeating: "x", count: 100_000)
        let error = serverError(long)
        check(error, .controlLineTooLong(limit: 4096))
        #expect(error?.offendingBytes == String(repeating: "x", count: 64) + "…(100000 bytes)")
        check(clientError(long), .controlLineTooLong(limit: 4096))
    }

    @Test func controlLineOverTheLimitIsRejectedBeforeItEnds() throws {
        // No need to wait for a CRLF that may never come: limit + 2 bytes without LF is enough.
        var decoder = ServerOpDecoder(maxControlLine: 8)
        var buffer = ByteBuffer(string: "MSG a 1 ")  // 8 bytes: could still end
        #expect(try decoder.decode(buffer: &buffer) == nil)
        buffer.writeString("1")  // 9 bytes: the 9th could be the CR of an 8-byte line
        #expect(try decoder.decode(buffer: &buffer) == nil)
        buffer.writeString("0")  // 10 bytes, no LF: over the limit for sure
        let error = protocolError { _ = try decoder.decode(buffer: &buffer) }
        check(error, .controlLineTooLong(limit: 8))
    }

    @Test func controlLineWithCRLFBeyondTheLimit() {
        let line = "MSG " + String(repeating: "x", count: 40) + " 1 0\r\n\r\n"
        check(serverError(line, ServerOpDecoder(maxControlLine: 16)), .controlLineTooLong(limit: 16))
        // One byte over: a line of limit + 1 bytes, with and without CR.
        check(serverError("PING\r\n", ServerOpDecoder(maxControlLine: 3)), .controlLineTooLong(limit: 3))
        check(serverError("PING\n", ServerOpDecoder(maxControlLine: 3)), .controlLineTooLong(limit: 3))
        check(clientError("SUB abcdefghijkl 1\r\n", ClientOpDecoder(maxControlLine: 16)), .controlLineTooLong(limit: 16))
        check(clientError("SUB abcdefghijk 1\r\n", ClientOpDecoder(maxControlLine: 16)), .controlLineTooLong(limit: 16))
        // Exactly at the limit passes.
        #expect(throws: Never.self) { _ = try clientOps("SUB abcdefghij 1\r\n", ClientOpDecoder(maxControlLine: 16)) }
    }

    @Test func theLimitAppliesToTheControlLineOnly() throws {
        let ops = try serverOps("MSG a 1 100\r\n" + String(repeating: "p", count: 100) + "\r\n", ServerOpDecoder(maxControlLine: 16))
        #expect(ops.count == 1)
    }

    // MARK: Byte counts

    @Test func negativeByteCount() {
        check(serverError("MSG a 1 -5\r\n"), .invalidByteCount, offending: "MSG a 1 -5")
        check(serverError("HMSG a 1 -1 5\r\n"), .invalidByteCount)
        check(serverError("HMSG a 1 1 -5\r\n"), .invalidByteCount)
        check(clientError("PUB a -5\r\n"), .invalidByteCount)
        check(clientError("HPUB a -1 5\r\n"), .invalidByteCount)
    }

    @Test func hugeByteCount() {
        check(serverError("MSG a 1 99999999999\r\n"), .invalidByteCount, offending: "MSG a 1 99999999999")
        check(serverError("MSG a 1 99999999999999999999999999\r\n"), .invalidByteCount)
        check(serverError("HMSG a 1 12 99999999999\r\n"), .invalidByteCount)
        check(clientError("PUB a 99999999999\r\n"), .invalidByteCount)
        // Ten digits parse, but are far over any maximum payload.
        check(serverError("MSG a 1 9999999999\r\n"), .payloadTooLarge(size: 9_999_999_999, limit: 64 * 1024 * 1024))
    }

    @Test func nonNumericByteCount() {
        for count in ["abc", "5x", "0x10", "+5", "1.5", "1e3", "٣"] {
            check(serverError("MSG a 1 \(count)\r\n"), .invalidByteCount)
            check(clientError("PUB a \(count)\r\n"), .invalidByteCount)
        }
        check(serverError("HMSG a 1 x 5\r\n"), .invalidByteCount)
        check(clientError("HPUB a 12 x\r\n"), .invalidByteCount)
    }

    @Test func nonNumericSid() {
        check(serverError("MSG a x 5\r\nhello\r\n"), .invalidArguments)
        check(serverError("MSG a -1 5\r\nhello\r\n"), .invalidArguments)
        check(serverError("HMSG a x 12 12\r\n"), .invalidArguments)
    }

    @Test func payloadLongerThanAnnounced() {
        check(serverError("MSG a 1 3\r\nhello\r\n"), .payloadNotTerminated, offending: "MSG a 1 3")
        check(serverError("MSG a 1 5\r\nhello\n\r\n"), .payloadNotTerminated)
        check(serverError("MSG a 1 0\r\nx\r\n"), .payloadNotTerminated)
        check(serverError(hmsg("a", 1, headers: "NATS/1.0\r\n\r\n", payload: "ab").replacingOccurrences(of: "ab", with: "abc")),
              .payloadNotTerminated)
        check(clientError("PUB a 3\r\nhello\r\n"), .payloadNotTerminated, offending: "PUB a 3")
        check(clientError("HPUB a 12 13\r\nNATS/1.0\r\n\r\nxy\r\n"), .payloadNotTerminated)
    }

    @Test func payloadOverMaxPayloadIsRejectedBeforeItArrives() {
        check(serverError("MSG a 1 11\r\n", ServerOpDecoder(maxPayload: 10)), .payloadTooLarge(size: 11, limit: 10),
              offending: "MSG a 1 11")
        check(serverError("HMSG a 1 12 11\r\n", ServerOpDecoder(maxPayload: 10)), .invalidByteCount)
        check(serverError("HMSG a 1 12 13\r\n", ServerOpDecoder(maxPayload: 12)), .payloadTooLarge(size: 13, limit: 12))
        check(clientError("PUB a 1048577\r\n"), .payloadTooLarge(size: 1_048_577, limit: 1_048_576))
        check(clientError("HPUB a r 12 11\r\n", ClientOpDecoder(maxPayload: 10)), .invalidByteCount)
        check(clientError("HPUB a r 12 20\r\n", ClientOpDecoder(maxPayload: 19)), .payloadTooLarge(size: 20, limit: 19))
    }

    // MARK: Headers

    @Test func hmsgHeaderSizeOverTotalSize() {
        check(serverError("HMSG a 1 20 10\r\n" + String(repeating: "x", count: 10) + "\r\n"), .invalidByteCount,
              offending: "HMSG a 1 20 10")
        check(clientError("HPUB a 20 10\r\n" + String(repeating: "x", count: 10) + "\r\n"), .invalidByteCount)
    }

    /// Server side, a broken header block does not end the connection: the frame is consumed
    /// and reported, and decoding goes on with the next frame.
    func expectMalformedThenPing(
        _ block: [UInt8], payload: String = "body", sourceLocation: SourceLocation = #_sourceLocation
    ) {
        var bytes = Array("HMSG sub.j 42 _INBOX.r \(block.count) \(block.count + payload.utf8.count)\r\n".utf8)
        bytes += block + Array(payload.utf8) + Array("\r\nPING\r\n".utf8)
        do {
            let ops = try readInPieces(ServerOpDecoder(), bytes)
            #expect(ops.count == 2, sourceLocation: sourceLocation)
            #expect(ops.last == .ping, sourceLocation: sourceLocation)
            guard case .malformedMessage(let sid, let subject, let error) = ops.first else {
                Issue.record("expected a malformed message, got \(ops)", sourceLocation: sourceLocation)
                return
            }
            #expect(sid == 42, sourceLocation: sourceLocation)
            #expect(subject == "sub.j", sourceLocation: sourceLocation)
            check(error, .invalidHeaders(reason: ""), sourceLocation: sourceLocation)
        } catch {
            Issue.record("threw \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func hmsgWithInvalidUTF8InAHeaderValue() {
        expectMalformedThenPing(Array("NATS/1.0\r\nName: ".utf8) + [0xC3, 0x28, 0xFF] + Array("\r\n\r\n".utf8))
        expectMalformedThenPing(Array("NATS/1.0\r\nNa".utf8) + [0xFE] + Array("me: v\r\n\r\n".utf8))
        expectMalformedThenPing(Array("NATS/1.0 503 ".utf8) + [0xE2, 0x82] + Array("\r\n\r\n".utf8))
    }

    @Test func hmsgWithBadVersionLine() {
        for line in ["NATS/2.0", "HTTP/1.1", "NATS/1.", "NATS/1.0x", "NATS/1.0 50", "NATS/1.0 5033", "NATS/1.0 abc", ""] {
            expectMalformedThenPing(Array("\(line)\r\nA: b\r\n\r\n".utf8))
        }
    }

    @Test func hmsgWithOtherBrokenBlocks() {
        expectMalformedThenPing(Array("NATS/1.0\r\n".utf8))  // too short, no blank line
        expectMalformedThenPing(Array("NATS/1.0\r\nA: b\r\n".utf8))  // no blank line
        expectMalformedThenPing(Array("NATS/1.0\r\nno colon\r\n\r\n".utf8))
        expectMalformedThenPing(Array("NATS/1.0\r\n: empty name\r\n\r\n".utf8))
        expectMalformedThenPing(Array("NATS/1.0\r\nA: b\nC: d\r\n\r\n".utf8))  // bare LF
        expectMalformedThenPing(Array("NATS/1.0\nA: b\r\n\r\n".utf8))
        expectMalformedThenPing([])
    }

    @Test func hpubWithBrokenHeadersThrowsOnTheClientSide() {
        check(clientError(hpub("a", headers: "NATS/2.0\r\n\r\n")), .invalidHeaders(reason: ""))
        check(clientError(hpub("a", headers: "NATS/1.0\r\nA\r\n\r\n", payload: "x")), .invalidHeaders(reason: ""))
        let block = Array("NATS/1.0\r\nA: ".utf8) + [0xFF] + Array("\r\n\r\n".utf8)
        let invalidUTF8 = Array("HPUB a \(block.count) \(block.count)\r\n".utf8) + block + Array("\r\n".utf8)
        check(protocolError { _ = try readInPieces(ClientOpDecoder(), invalidUTF8) }, .invalidHeaders(reason: ""))
    }

    // MARK: Argument counts

    @Test func pubWithTooManyOrTooFewArguments() {
        check(clientError("PUB\r\n"), .invalidArguments, offending: "PUB")
        check(clientError("PUB 5\r\n"), .invalidArguments)
        check(clientError("PUB a b c 5\r\nhello\r\n"), .invalidArguments, offending: "PUB a b c 5")
        check(clientError("PUB a b c d e f g h 5\r\n"), .invalidArguments)
        check(clientError("HPUB a 5\r\n"), .invalidArguments)
        check(clientError("HPUB a b c 12 12\r\n"), .invalidArguments)
    }

    @Test func subAndUnsubWithTooManyOrTooFewArguments() {
        check(clientError("SUB\r\n"), .invalidArguments)
        check(clientError("SUB a\r\n"), .invalidArguments)
        check(clientError("SUB a q 1 x\r\n"), .invalidArguments)
        check(clientError("UNSUB\r\n"), .invalidArguments)
        check(clientError("UNSUB 1 2 3\r\n"), .invalidArguments)
        let badMax = clientError("UNSUB 1 many\r\n")
        #expect(badMax?.kind == .invalidByteCount || badMax?.kind == .invalidArguments)
    }

    @Test func msgWithTooManyOrTooFewArguments() {
        check(serverError("MSG\r\n"), .invalidArguments)
        check(serverError("MSG a 5\r\n"), .invalidArguments)
        check(serverError("MSG a 1 r x 5\r\n"), .invalidArguments)
        check(serverError("MSG a 1 r x y z w 5\r\n"), .invalidArguments)
        check(serverError("HMSG a 1 12\r\n"), .invalidArguments)
        check(serverError("HMSG a 1 r x 12 12\r\n"), .invalidArguments)
    }

    // MARK: Truncation

    @Test func streamEndingMidFrame() {
        for partial in ["P", "PING", "PING\r", "MSG a 1 5", "MSG a 1 5\r\n", "MSG a 1 5\r\nhel", "MSG a 1 5\r\nhello\r",
                        "HMSG a 1 12 12\r\nNATS/1.0\r\n", "INFO {\"a\":"] {
            let error = serverError("PONG\r\n" + partial)
            check(error, .truncatedFrame, offending: NATSProtocolError.summarize(Array(partial.utf8)))
        }
        for partial in ["CONNECT {", "PUB a 5\r\nhel", "SUB a 1", "HPUB a 12 14\r\nNATS/1.0\r\n\r\nx"] {
            check(clientError("PING\r\n" + partial), .truncatedFrame)
        }
    }

    @Test func longTruncatedFrameIsSummarizedShortly() {
        let error = serverError("MSG a 1 1000\r\n" + String(repeating: "\u{1}", count: 500))
        check(error, .truncatedFrame)
        #expect(error?.offendingBytes.hasSuffix("…(514 bytes)") == true)
        #expect(error?.offendingBytes.hasPrefix("MSG a 1 1000\\r\\n\\x01") == true)
    }

    @Test func finishAfterCompleteFramesIsQuiet() throws {
        var reader = FrameReader(ServerOpDecoder())
        var count = 0
        try reader.read(ByteBuffer(string: "PING\r\n")) { _ in count += 1 }
        try reader.finish { _ in count += 1 }
        try reader.finish { _ in count += 1 }
        #expect(count == 1)
    }

    // MARK: JSON

    @Test func infoWithBrokenJSON() {
        for json in ["{\"server_id\":", "not json", "", "[]", "{\"max_payload\":\"big\"}", "{\"port\":1.5}", "{}}"] {
            check(serverError("INFO \(json)\r\n"), .invalidJSON(reason: ""))
        }
        let error = serverError("INFO {\"server_id\":\r\n")
        if case .invalidJSON(let reason) = error?.kind {
            #expect(reason.hasPrefix("INFO"))
        }
        #expect(error?.offendingBytes == "INFO {\"server_id\":")
    }

    @Test func connectWithBrokenJSON() {
        for json in ["{\"verbose\":", "{\"verbose\":\"yes\"}", "nope", ""] {
            check(clientError("CONNECT \(json)\r\n"), .invalidJSON(reason: ""))
        }
    }

    @Test func errorsEscapeControlBytes() {
        let error = serverError("F\u{0}\u{7F}\\\t\u{1B}\u{FF}O\r\n")
        check(error, .unknownOperation)
        #expect(error?.offendingBytes == "F\\x00\\x7F\\\\\\t\\x1B\\xC3\\xBFO")
    }
}
