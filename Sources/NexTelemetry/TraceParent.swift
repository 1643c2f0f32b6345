/// A W3C `traceparent` header: `00-<trace id, 32 hex>-<parent span id, 16 hex>-<flags, 2 hex>`.
///
/// Parsing is strict, as the W3C Trace Context spec asks of a value that crossed a trust
/// boundary: any other length, a non-hex digit, version `ff`, or an all-zero id is refused
/// (the span then starts a trace of its own).
public struct TraceParent: Sendable, Hashable, CustomStringConvertible {
    /// 16 bytes.
    public var traceID: [UInt8]
    /// 8 bytes: the span this one's children name as their parent.
    public var spanID: [UInt8]
    public var sampled: Bool

    public init(traceID: [UInt8], spanID: [UInt8], sampled: Bool) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
    }

    /// Parses a header value; nil when it is not a valid version-00 `traceparent`.
    public init?(header: String) {
        let parts = header.split(separator: "-", omittingEmptySubsequences: false)
        guard header.utf8.count == 55, parts.count == 4, parts[0] == "00",
              let trace = Self.bytes(parts[1], count: 16), let span = Self.bytes(parts[2], count: 8),
              let flags = Self.bytes(parts[3], count: 1),
              trace.contains(where: { $0 != 0 }), span.contains(where: { $0 != 0 })
        else { return nil }
        self.init(traceID: trace, spanID: span, sampled: flags[0] & 1 == 1)
    }

    /// A new trace: random ids, sampled.
    public static func random() -> TraceParent {
        TraceParent(traceID: randomID(16), spanID: randomID(8), sampled: true)
    }

    /// The same trace, with a new span id (a child's).
    public func child() -> TraceParent {
        TraceParent(traceID: traceID, spanID: Self.randomID(8), sampled: sampled)
    }

    public var header: String { "00-\(Self.hex(traceID))-\(Self.hex(spanID))-\(sampled ? "01" : "00")" }
    public var description: String { header }
    public var traceIDHex: String { Self.hex(traceID) }
    public var spanIDHex: String { Self.hex(spanID) }

    static func randomID(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        while true {
            let id = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if id.contains(where: { $0 != 0 }) { return id }
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func bytes(_ text: Substring, count: Int) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count == count * 2 else { return nil }
        var result = [UInt8]()
        result.reserveCapacity(count)
        for index in stride(from: 0, to: utf8.count, by: 2) {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            result.append(high << 4 | low)
        }
        return result
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
