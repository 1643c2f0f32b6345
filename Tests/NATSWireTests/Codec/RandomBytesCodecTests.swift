import NIOCore
import Testing
@testable import NATSWire

/// Arbitrary and corrupted input: decoders only ever return ops or throw ``NATSProtocolError``.
///
/// A crash would take the test process down; a decoder that returns frames without consuming
/// bytes is caught by `readInPieces`, which fails once more ops come out than bytes went in.
@Suite struct RandomBytesCodecTests {
    /// Words that steer random input into the decoders' deeper paths.
    static let words: [[UInt8]] = [
        "MSG ", "HMSG ", "PING", "PONG", "+OK", "-ERR ", "INFO ", "PUB ", "HPUB ", "SUB ", "UNSUB ", "CONNECT ",
        "msg ", "hpub ", " ", "\t", "  ", "\r\n", "\r", "\n", "\r\n\r\n", "NATS/1.0", "NATS/1.0 503", ": ", "{", "}",
        "{\"max_payload\":1}", "'", "-", "0", "1", "5", "12", "16", "99999999999", "a.b", "_INBOX.x", "\u{0}", "\u{FF}",
    ].map { Array($0.utf8) }

    enum Outcome { case finished, threw }

    /// Feeds `bytes` in random pieces and checks the one allowed failure mode.
    static func feed<D: NIOSingleStepByteToMessageDecoder>(
        _ decoder: D, _ bytes: [UInt8], random: inout RandomFrames,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> Outcome {
        let cuts = random.chance(50) ? random.cuts(in: bytes.count, count: random.int(1...8)) : []
        do {
            _ = try readInPieces(decoder, bytes, cuts: cuts)
            return .finished
        } catch let error as NATSProtocolError {
            #expect(isShortPrintableSummary(error.offendingBytes), "\(error)", sourceLocation: sourceLocation)
            return .threw
        } catch {
            Issue.record("\(error) for \(NATSProtocolError.summarize(bytes))", sourceLocation: sourceLocation)
            return .threw
        }
    }

    static func randomBytes(_ random: inout RandomFrames) -> [UInt8] {
        var bytes: [UInt8] = []
        let length = random.int(0...160)
        while bytes.count < length {
            if random.chance(60) {
                bytes += random.pick(words)
            } else {
                bytes.append(UInt8.random(in: 0...255, using: &random.rng))
            }
        }
        return bytes
    }

    static func mutate(_ bytes: [UInt8], _ random: inout RandomFrames) -> [UInt8] {
        var bytes = bytes
        for _ in 0..<random.int(1...3) {
            let position = random.int(0...bytes.count)
            switch random.int(0...5) {
            case 0 where !bytes.isEmpty:  // flip a byte
                let index = min(position, bytes.count - 1)
                bytes[index] ^= UInt8.random(in: 1...255, using: &random.rng)
            case 1:  // truncate
                bytes.removeSubrange(position...)
            case 2:  // insert garbage
                bytes.insert(contentsOf: randomBytes(&random).prefix(random.int(1...12)), at: position)
            case 3 where !bytes.isEmpty:  // delete a range
                bytes.removeSubrange(position..<min(bytes.count, position + random.int(1...10)))
            case 4:  // duplicate a range
                let end = min(bytes.count, position + random.int(1...40))
                let copy = Array(bytes[position..<end])
                bytes.insert(contentsOf: copy, at: end)
            default:  // replace a byte with a protocol-significant one
                if !bytes.isEmpty {
                    bytes[min(position, bytes.count - 1)] = random.pick(Array(" \t\r\n0-:'".utf8))
                }
            }
        }
        return bytes
    }

    static let serverDecoders = [
        ServerOpDecoder(), ServerOpDecoder(maxControlLine: 32, maxPayload: 64), ServerOpDecoder(maxControlLine: 8, maxPayload: 0),
    ]
    static let clientDecoders = [
        ClientOpDecoder(), ClientOpDecoder(maxControlLine: 32, maxPayload: 64), ClientOpDecoder(maxControlLine: 8, maxPayload: 0),
    ]

    @Test func randomBytesIntoTheServerDecoder() {
        var random = RandomFrames(seed: 0xF022_0001)
        var outcomes = (finished: 0, threw: 0)
        for _ in 0..<3000 {
            let bytes = Self.randomBytes(&random)
            switch Self.feed(random.pick(Self.serverDecoders), bytes, random: &random) {
            case .finished: outcomes.finished += 1
            case .threw: outcomes.threw += 1
            }
        }
        #expect(outcomes.finished > 0)
        #expect(outcomes.threw > 0)
    }

    @Test func randomBytesIntoTheClientDecoder() {
        var random = RandomFrames(seed: 0xF022_0002)
        var outcomes = (finished: 0, threw: 0)
        for _ in 0..<3000 {
            let bytes = Self.randomBytes(&random)
            switch Self.feed(random.pick(Self.clientDecoders), bytes, random: &random) {
            case .finished: outcomes.finished += 1
            case .threw: outcomes.threw += 1
            }
        }
        #expect(outcomes.finished > 0)
        #expect(outcomes.threw > 0)
    }

    @Test func uniformRandomBytesIntoBothDecoders() {
        var random = RandomFrames(seed: 0xF022_0003)
        for _ in 0..<1000 {
            let bytes = (0..<random.int(0...200)).map { _ in UInt8.random(in: 0...255, using: &random.rng) }
            _ = Self.feed(ServerOpDecoder(), bytes, random: &random)
            _ = Self.feed(ClientOpDecoder(), bytes, random: &random)
        }
    }

    @Test func mutatedServerStreams() {
        var random = RandomFrames(seed: 0xF022_0004)
        for _ in 0..<1500 {
            let stream = random.serverStream(ops: random.int(1...6))
            _ = Self.feed(random.pick(Self.serverDecoders), Self.mutate(stream.bytes, &random), random: &random)
        }
    }

    @Test func mutatedClientStreams() {
        var random = RandomFrames(seed: 0xF022_0005)
        for _ in 0..<1500 {
            let stream = random.clientStream(ops: random.int(1...6))
            _ = Self.feed(random.pick(Self.clientDecoders), Self.mutate(stream.bytes, &random), random: &random)
        }
    }

    @Test func mutatedHeaderBlocksNeverCrashOrDerailTheServerStream() throws {
        // Corrupt only the header block of an HMSG whose sizes still add up: the frame is
        // either a message or a malformed message, and the PING after it always decodes.
        var random = RandomFrames(seed: 0xF022_0006)
        for _ in 0..<1500 {
            let block = Self.mutate(random.headers().encodedBlock, &random)
            let payload = random.payload()
            var bytes = Array("HMSG s 7 \(block.count) \(block.count + payload.count)\r\n".utf8)
            bytes += block + payload + Array("\r\nPING\r\n".utf8)
            let ops = try serverOps(bytes)
            #expect(ops.count == 2)
            #expect(ops.last == .ping)
            switch ops.first {
            case .msg(let message):
                #expect(Array(buffer: message.payload) == payload)
            case .malformedMessage(let sid, let subject, let error):
                #expect(sid == 7 && subject == "s")
                #expect(error.kind.name == "invalidHeaders")
                #expect(isShortPrintableSummary(error.offendingBytes))
            default:
                Issue.record("unexpected \(String(describing: ops.first))")
            }
        }
    }
}

extension NATSHeaders {
    /// The encoded block as bytes.
    var encodedBlock: [UInt8] {
        var buffer = ByteBuffer()
        write(into: &buffer)
        return Array(buffer: buffer)
    }
}
