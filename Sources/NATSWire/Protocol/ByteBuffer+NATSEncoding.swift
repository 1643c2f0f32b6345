import FoundationEssentials
import NIOCore

/// Encoders for every NATS operation, client side (`CONNECT`, `PUB`, `HPUB`, `SUB`, `UNSUB`)
/// and server side (`INFO`, `MSG`, `HMSG`, `+OK`, `-ERR`), plus `PING`/`PONG`.
///
/// They write bytes only; callers check subjects and sizes first (see ``NATSSubject``).
extension ByteBuffer {
    /// `PUB <subject> [reply] <#bytes>\r\n<payload>\r\n`, or `HPUB` when `headers` is given.
    package mutating func writePublish(
        subject: String, replyTo: String?, headers: NATSHeaders?, payload: UnsafeRawBufferPointer
    ) {
        if let headers {
            writeHeaderedFrame(op: "HPUB ", subject: subject, sid: nil, replyTo: replyTo, headers: headers, payload: payload)
            return
        }
        // The hot path of every publish: size it once, then copy each piece with no further checks.
        let size = 4 + subject.utf8.count + (replyTo.map { $0.utf8.count + 1 } ?? 0) + 1
            + Self.decimalDigits(payload.count) + 2 + payload.count + 2
        writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var at = 0
            Self.copy("PUB ", into: out, at: &at)
            Self.copy(subject, into: out, at: &at)
            if let replyTo {
                out[at] = UInt8(ascii: " ")
                at += 1
                Self.copy(replyTo, into: out, at: &at)
            }
            out[at] = UInt8(ascii: " ")
            at += 1
            Self.copyDecimal(payload.count, into: out, at: &at)
            out[at] = ControlLine.cr
            out[at + 1] = ControlLine.lf
            at += 2
            if payload.count > 0 {
                out.baseAddress!.advanced(by: at).copyMemory(from: payload.baseAddress!, byteCount: payload.count)
                at += payload.count
            }
            out[at] = ControlLine.cr
            out[at + 1] = ControlLine.lf
            return at + 2
        }
    }

    private static func decimalDigits(_ value: Int) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return digits
    }

    private static func copyDecimal(_ value: Int, into out: UnsafeMutableRawBufferPointer, at: inout Int) {
        let digits = decimalDigits(value)
        var rest = value
        for index in stride(from: at + digits - 1, through: at, by: -1) {
            out[index] = UInt8(ascii: "0") &+ UInt8(rest % 10)
            rest /= 10
        }
        at += digits
    }

    private static func copy(_ text: String, into out: UnsafeMutableRawBufferPointer, at: inout Int) {
        let count = text.utf8.count
        let copied = text.utf8.withContiguousStorageIfAvailable { bytes in
            if count > 0 { out.baseAddress!.advanced(by: at).copyMemory(from: bytes.baseAddress!, byteCount: count) }
        }
        if copied == nil {
            for (offset, byte) in text.utf8.enumerated() { out[at + offset] = byte }
        }
        at += count
    }

    private static func copy(_ text: StaticString, into out: UnsafeMutableRawBufferPointer, at: inout Int) {
        out.baseAddress!.advanced(by: at).copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
        at += text.utf8CodeUnitCount
    }

    /// `MSG <subject> <sid> [reply] <#bytes>`, or `HMSG` when `headers` is given.
    package mutating func writeMessage(
        subject: String, sid: String, replyTo: String?, headers: NATSHeaders?, payload: UnsafeRawBufferPointer
    ) {
        if let headers {
            writeHeaderedFrame(op: "HMSG ", subject: subject, sid: sid, replyTo: replyTo, headers: headers, payload: payload)
            return
        }
        writeStaticString("MSG ")
        writeString(subject)
        writeInteger(UInt8(ascii: " "))
        writeString(sid)
        if let replyTo {
            writeInteger(UInt8(ascii: " "))
            writeString(replyTo)
        }
        writeInteger(UInt8(ascii: " "))
        writeDecimal(payload.count)
        writeStaticString("\r\n")
        writeBytes(payload)
        writeStaticString("\r\n")
    }

    mutating func writeHeaderedFrame(
        op: StaticString, subject: String, sid: String?, replyTo: String?, headers: NATSHeaders,
        payload: UnsafeRawBufferPointer
    ) {
        let headerSize = headers.encodedSize
        writeStaticString(op)
        writeString(subject)
        if let sid {
            writeInteger(UInt8(ascii: " "))
            writeString(sid)
        }
        if let replyTo {
            writeInteger(UInt8(ascii: " "))
            writeString(replyTo)
        }
        writeInteger(UInt8(ascii: " "))
        writeDecimal(headerSize)
        writeInteger(UInt8(ascii: " "))
        writeDecimal(headerSize + payload.count)
        writeStaticString("\r\n")
        headers.write(into: &self)
        writeBytes(payload)
        writeStaticString("\r\n")
    }

    /// `SUB <subject> [queue] <sid>`.
    package mutating func writeSubscribe(subject: String, queue: String?, sid: Int) {
        writeStaticString("SUB ")
        writeString(subject)
        if let queue {
            writeInteger(UInt8(ascii: " "))
            writeString(queue)
        }
        writeInteger(UInt8(ascii: " "))
        writeDecimal(sid)
        writeStaticString("\r\n")
    }

    /// `UNSUB <sid> [max]`.
    package mutating func writeUnsubscribe(sid: Int, max: Int?) {
        writeStaticString("UNSUB ")
        writeDecimal(sid)
        if let max {
            writeInteger(UInt8(ascii: " "))
            writeDecimal(max)
        }
        writeStaticString("\r\n")
    }

    /// `CONNECT {json}`.
    package mutating func writeConnect(_ info: ConnectInfo) throws {
        writeStaticString("CONNECT ")
        writeBytes(try JSONEncoder().encode(info))
        writeStaticString("\r\n")
    }

    /// `INFO {json}`.
    package mutating func writeInfo(_ info: ServerInfo) throws {
        writeStaticString("INFO ")
        writeBytes(try JSONEncoder().encode(info))
        writeStaticString("\r\n")
    }

    /// `PING`.
    package mutating func writePing() { writeStaticString("PING\r\n") }
    /// `PONG`.
    package mutating func writePong() { writeStaticString("PONG\r\n") }
    /// `+OK`.
    package mutating func writeOK() { writeStaticString("+OK\r\n") }

    /// `-ERR '<message>'`.
    package mutating func writeError(_ message: String) {
        writeStaticString("-ERR '")
        writeString(message)
        writeStaticString("'\r\n")
    }

    /// Writes a non-negative integer in decimal without allocating.
    mutating func writeDecimal(_ value: Int) {
        precondition(value >= 0, "byte counts and sids are never negative")
        if value < 10 {
            writeInteger(UInt8(ascii: "0") &+ UInt8(value))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for 24 digits
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { raw in
            while rest > 0 {
                raw[23 - count] = UInt8(ascii: "0") &+ UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            writeBytes(UnsafeRawBufferPointer(rebasing: raw[(24 - count)...]))
        }
    }
}
