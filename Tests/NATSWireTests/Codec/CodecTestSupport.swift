import NIOCore
import Testing
@testable import NATSWire

// Helpers shared by the codec suites: building buffers, decoding whole or in pieces,
// capturing protocol errors, and a seeded generator of valid random NATS streams.

// MARK: - Bytes and buffers

extension ByteBuffer {
    /// Runs one of the `UnsafeRawBufferPointer`-taking encoders with `payload`.
    mutating func writePublish(subject: String, replyTo: String?, headers: NATSHeaders?, payload: [UInt8]) {
        payload.withUnsafeBytes { writePublish(subject: subject, replyTo: replyTo, headers: headers, payload: $0) }
    }

    mutating func writeMessage(subject: String, sid: Int, replyTo: String?, headers: NATSHeaders?, payload: [UInt8]) {
        payload.withUnsafeBytes {
            writeMessage(subject: subject, sid: String(sid), replyTo: replyTo, headers: headers, payload: $0)
        }
    }
}

enum CodecTestError: Error {
    /// A decoder produced more ops than there are bytes: it would loop forever.
    case runaway(ops: Int, bytes: Int)
}

/// Every op in `bytes` decoded in one buffer with the decoder itself; also returns what was left over.
func decodeWhole<D: NIOSingleStepByteToMessageDecoder>(
    _ decoder: D, _ bytes: [UInt8]
) throws -> (ops: [D.InboundOut], leftover: Int) {
    var decoder = decoder
    var buffer = ByteBuffer(bytes: bytes)
    var ops: [D.InboundOut] = []
    while let op = try decoder.decode(buffer: &buffer) {
        ops.append(op)
        if ops.count > bytes.count { throw CodecTestError.runaway(ops: ops.count, bytes: bytes.count) }
    }
    return (ops, buffer.readableBytes)
}

/// `bytes` fed through a ``FrameReader`` in pieces cut at `cuts`, then `finish`ed (when asked).
///
/// Throws as soon as more ops come out than bytes went in, so a decoder stuck returning the
/// same frame cannot hang the test.
func readInPieces<D: NIOSingleStepByteToMessageDecoder>(
    _ decoder: D, _ bytes: [UInt8], cuts: [Int] = [], finish: Bool = true
) throws -> [D.InboundOut] {
    var reader = FrameReader(decoder)
    var ops: [D.InboundOut] = []
    let limit = bytes.count
    func receive(_ op: D.InboundOut) throws {
        ops.append(op)
        if ops.count > limit { throw CodecTestError.runaway(ops: ops.count, bytes: limit) }
    }
    var start = 0
    for cut in cuts.sorted() + [bytes.count] where cut >= start {
        try reader.read(ByteBuffer(bytes: bytes[start..<cut]), receive)
        start = cut
    }
    if finish { try reader.finish(receive) }
    return ops
}

/// The ``NATSProtocolError`` thrown by `body`, or nil (recording an issue) when it throws nothing or something else.
func protocolError(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> NATSProtocolError? {
    do {
        try body()
        Issue.record("expected a NATSProtocolError, nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as NATSProtocolError {
        return error
    } catch {
        Issue.record("expected a NATSProtocolError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The error the server-op decoder throws for `text` (read whole, then finished).
func serverError(_ text: String, _ decoder: ServerOpDecoder = ServerOpDecoder(),
                 sourceLocation: SourceLocation = #_sourceLocation) -> NATSProtocolError? {
    protocolError(sourceLocation: sourceLocation) { _ = try readInPieces(decoder, Array(text.utf8)) }
}

/// The error the client-op decoder throws for `text` (read whole, then finished).
func clientError(_ text: String, _ decoder: ClientOpDecoder = ClientOpDecoder(),
                 sourceLocation: SourceLocation = #_sourceLocation) -> NATSProtocolError? {
    protocolError(sourceLocation: sourceLocation) { _ = try readInPieces(decoder, Array(text.utf8)) }
}

/// The server ops in `text`, decoded whole.
func serverOps(_ text: String, _ decoder: ServerOpDecoder = ServerOpDecoder()) throws -> [ServerOp] {
    try serverOps(Array(text.utf8), decoder)
}

func serverOps(_ bytes: [UInt8], _ decoder: ServerOpDecoder = ServerOpDecoder()) throws -> [ServerOp] {
    let (ops, leftover) = try decodeWhole(decoder, bytes)
    #expect(leftover == 0, "bytes left undecoded")
    return ops
}

/// The client ops in `text`, decoded whole.
func clientOps(_ text: String, _ decoder: ClientOpDecoder = ClientOpDecoder()) throws -> [ClientOp] {
    try clientOps(Array(text.utf8), decoder)
}

func clientOps(_ bytes: [UInt8], _ decoder: ClientOpDecoder = ClientOpDecoder()) throws -> [ClientOp] {
    let (ops, leftover) = try decodeWhole(decoder, bytes)
    #expect(leftover == 0, "bytes left undecoded")
    return ops
}

/// The only message in `text`, or nil (recording an issue) when `text` is not exactly one `MSG`/`HMSG`.
func onlyMessage(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> NATSMessage? {
    let ops = try serverOps(text)
    guard ops.count == 1, case .msg(let message) = ops[0] else {
        Issue.record("expected one message, got \(ops)", sourceLocation: sourceLocation)
        return nil
    }
    return message
}

/// An `HMSG` frame with the sizes computed from the header block and payload.
func hmsg(_ subject: String, _ sid: Int, reply: String? = nil, headers block: String, payload: String = "") -> String {
    let headerSize = block.utf8.count
    let total = headerSize + payload.utf8.count
    let args = [subject, String(sid)] + (reply.map { [$0] } ?? []) + [String(headerSize), String(total)]
    return "HMSG " + args.joined(separator: " ") + "\r\n" + block + payload + "\r\n"
}

/// An `HPUB` frame with the sizes computed from the header block and payload.
func hpub(_ subject: String, reply: String? = nil, headers block: String, payload: String = "") -> String {
    let headerSize = block.utf8.count
    let total = headerSize + payload.utf8.count
    let args = [subject] + (reply.map { [$0] } ?? []) + [String(headerSize), String(total)]
    return "HPUB " + args.joined(separator: " ") + "\r\n" + block + payload + "\r\n"
}

extension NATSProtocolError.Kind {
    /// The case, without associated values (reasons are free text).
    var name: String {
        switch self {
        case .unknownOperation: "unknownOperation"
        case .controlLineTooLong: "controlLineTooLong"
        case .invalidArguments: "invalidArguments"
        case .invalidByteCount: "invalidByteCount"
        case .payloadTooLarge: "payloadTooLarge"
        case .payloadNotTerminated: "payloadNotTerminated"
        case .invalidHeaders: "invalidHeaders"
        case .invalidJSON: "invalidJSON"
        case .truncatedFrame: "truncatedFrame"
        }
    }
}

/// Whether an error's `offendingBytes` is what the type promises: a short, single-line, printable summary.
func isShortPrintableSummary(_ text: String) -> Bool {
    // 64 bytes, each escaped to at most 4 characters, plus the "…(N bytes)" suffix.
    text.unicodeScalars.count <= 64 * 4 + 24
        && text.unicodeScalars.allSatisfy { ($0.value >= 0x20 && $0.value < 0x7F) || $0 == "…" }
}

// MARK: - Seeded randomness

/// SplitMix64: a tiny, fast, seedable generator, so property tests are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random values for valid NATS frames.
struct RandomFrames {
    var rng: SeededGenerator

    init(seed: UInt64) { rng = SeededGenerator(seed: seed) }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

    static let tokenAlphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-$".utf8)
    /// Printable ASCII that may sit anywhere inside a header value or error text.
    static let textAlphabet = Array((0x20...0x7E).map { UInt8($0) })

    mutating func token(_ length: ClosedRange<Int> = 1...8) -> String {
        String(decoding: (0..<int(length)).map { _ in pick(Self.tokenAlphabet) }, as: UTF8.self)
    }

    mutating func subject() -> String {
        (0..<int(1...4)).map { _ in token() }.joined(separator: ".")
    }

    /// Printable text that does not start or end with a blank (decoders trim those).
    mutating func text(_ length: ClosedRange<Int>) -> String {
        var bytes = (0..<int(length)).map { _ in pick(Self.textAlphabet) }
        while let first = bytes.first, first == 0x20 { bytes.removeFirst() }
        while let last = bytes.last, last == 0x20 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Payload bytes, often holding CRLF, protocol words and arbitrary bytes.
    mutating func payload() -> [UInt8] {
        let size: Int
        switch int(0...9) {
        case 0: size = 0
        case 1: size = 1
        case 2: size = 2
        case 3...7: size = int(3...64)
        default: size = int(65...700)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)
        let fragments: [[UInt8]] = [
            Array("\r\n".utf8), Array("\r".utf8), Array("\n".utf8), Array("MSG a 1 5\r\n".utf8),
            Array("PING\r\n".utf8), Array("\r\n\r\n".utf8), Array("NATS/1.0\r\n".utf8),
        ]
        while bytes.count < size {
            if chance(20) {
                bytes += pick(fragments)
            } else {
                bytes.append(UInt8.random(in: 0...255, using: &rng))
            }
        }
        return Array(bytes.prefix(size))
    }

    /// Headers whose fields survive a round trip: names repeat with different case, values are trimmed text.
    mutating func headers() -> NATSHeaders {
        var headers = NATSHeaders()
        if chance(30) {
            headers.status = int(100...999)
            if chance(50) {
                let description = text(1...20)  // an all-blank description is written as none
                headers.statusDescription = description.isEmpty ? nil : description
            }
        }
        let names = ["Nats-Msg-Id", "X-Trace", "x-trace", "X-TRACE", "KV-Operation", token(1...12)]
        for _ in 0..<int(0...5) {
            headers.append(pick(names), text(0...30))
        }
        return headers
    }

    mutating func serverInfo() -> ServerInfo {
        ServerInfo(
            serverID: token(10...56), serverName: chance(50) ? token() : nil, version: "2.\(int(0...12)).\(int(0...20))",
            host: chance(50) ? "0.0.0.0" : nil, port: chance(50) ? int(1...65535) : nil, headers: chance(80),
            maxPayload: int(1...67_108_864), proto: int(0...1), clientID: chance(50) ? UInt64(int(0...1_000_000)) : nil,
            authRequired: chance(50), tlsRequired: chance(20), tlsVerify: chance(20), tlsAvailable: chance(20),
            connectURLs: (0..<int(0...3)).map { _ in "10.0.\(int(0...255)).\(int(0...255)):\(int(1...65535))" },
            lameDuckMode: chance(20), jetStream: chance(50), nonce: chance(50) ? token(11...22) : nil,
            cluster: chance(30) ? token() : nil, domain: chance(20) ? token() : nil,
            clientIP: chance(30) ? "127.0.0.\(int(1...254))" : nil)
    }

    mutating func connectInfo() -> ConnectInfo {
        var info = ConnectInfo()
        info.verbose = chance(20)
        info.pedantic = chance(20)
        info.tlsRequired = chance(20)
        info.name = chance(50) ? token() : nil
        info.lang = pick(["swift", "go", "rust"])
        info.version = "\(int(0...3)).\(int(0...40)).\(int(0...9))"
        info.protocol = int(0...1)
        info.echo = chance(50)
        info.headers = chance(80)
        info.noResponders = chance(80)
        info.authToken = chance(20) ? token(8...30) : nil
        info.user = chance(30) ? token() : nil
        info.pass = chance(30) ? text(1...20) : nil
        info.nkey = chance(20) ? "U" + token(55...55) : nil
        info.jwt = chance(20) ? token(20...200) : nil
        info.sig = chance(20) ? token(86...86) : nil
        return info
    }

    /// A valid stream of server ops, the ops it must decode to, and where each frame ends.
    mutating func serverStream(ops count: Int) -> (bytes: [UInt8], ops: [ServerOp], frameEnds: [Int]) {
        var buffer = ByteBuffer()
        var ops: [ServerOp] = []
        var ends: [Int] = []
        for _ in 0..<count {
            switch int(0...9) {
            case 0:
                buffer.writePing()
                ops.append(.ping)
            case 1:
                buffer.writePong()
                ops.append(.pong)
            case 2:
                buffer.writeOK()
                ops.append(.ok)
            case 3:
                let text = text(0...40)
                buffer.writeError(text)
                ops.append(.err(text))
            case 4:
                let info = serverInfo()
                try! buffer.writeInfo(info)
                ops.append(.info(info))
            default:
                let subject = subject(), sid = int(0...9_999_999), reply = chance(40) ? "_INBOX." + token(22...22) : nil
                let headers = chance(40) ? headers() : nil
                let payload = payload()
                buffer.writeMessage(subject: subject, sid: sid, replyTo: reply, headers: headers, payload: payload)
                ops.append(.msg(NATSMessage(
                    subject: subject, sid: sid, replyTo: reply, headers: headers, payload: ByteBuffer(bytes: payload))))
            }
            ends.append(buffer.writerIndex)
        }
        return (Array(buffer: buffer), ops, ends)
    }

    /// A valid stream of client ops, the ops it must decode to, and where each frame ends.
    mutating func clientStream(ops count: Int) -> (bytes: [UInt8], ops: [ClientOp], frameEnds: [Int]) {
        var buffer = ByteBuffer()
        var ops: [ClientOp] = []
        var ends: [Int] = []
        for _ in 0..<count {
            switch int(0...9) {
            case 0:
                buffer.writePing()
                ops.append(.ping)
            case 1:
                buffer.writePong()
                ops.append(.pong)
            case 2:
                let info = connectInfo()
                try! buffer.writeConnect(info)
                ops.append(.connect(info))
            case 3:
                let subject = subject(), queue = chance(40) ? token() : nil, sid = int(0...999_999)
                buffer.writeSubscribe(subject: subject, queue: queue, sid: sid)
                ops.append(.sub(subject: subject, queue: queue, sid: String(sid)))
            case 4:
                let sid = int(0...999_999), max = chance(50) ? int(0...1_000_000) : nil
                buffer.writeUnsubscribe(sid: sid, max: max)
                ops.append(.unsub(sid: String(sid), max: max))
            default:
                let subject = subject(), reply = chance(40) ? "_INBOX." + token(22...22) : nil
                let headers = chance(40) ? headers() : nil
                let payload = payload()
                buffer.writePublish(subject: subject, replyTo: reply, headers: headers, payload: payload)
                ops.append(.pub(subject: subject, replyTo: reply, headers: headers, payload: ByteBuffer(bytes: payload)))
            }
            ends.append(buffer.writerIndex)
        }
        return (Array(buffer: buffer), ops, ends)
    }

    /// Up to `count` distinct cut positions strictly inside `0..<length`.
    mutating func cuts(in length: Int, count: Int) -> [Int] {
        guard length > 1 else { return [] }
        return Array(Set((0..<count).map { _ in int(1...(length - 1)) })).sorted()
    }
}

extension NATSProtocolError {
    /// ``summarize(_:limit:)`` for an array.
    static func summarize(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { summarize($0) }
    }
}
