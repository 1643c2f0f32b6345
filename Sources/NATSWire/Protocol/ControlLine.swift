/// Byte-level helpers shared by the client-op and server-op decoders: finding the end of a
/// control line, splitting its fields on spaces or tabs, recognising op names without regard
/// to case, and parsing byte counts.
enum ControlLine {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")

    /// The position of the `\n` that ends the first line, searching at most `limit + 2` bytes.
    static func lineFeedIndex(in bytes: UnsafeRawBufferPointer, limit: Int) -> Int? {
        let searched = min(bytes.count, limit + 2)
        guard searched > 0, let base = bytes.baseAddress else { return nil }
        guard let hit = memchr(base, Int32(lf), searched) else { return nil }
        return base.distance(to: UnsafeRawPointer(hit))
    }

    @inline(__always)
    static func isBlank(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09
    }

    /// Whether `bytes[start..<end]` holds only blanks (what may follow `PING`/`PONG`).
    static func isBlankOnly(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Bool {
        (start..<end).allSatisfy { isBlank(bytes[$0]) }
    }

    /// Splits `bytes[start..<end]` into at most `fields.count` blank-separated fields.
    /// Returns the number of fields found, or `nil` when there are more than `maxFields`.
    @inline(__always)
    static func split(
        _ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int,
        into fields: inout FieldRanges
    ) -> Int? {
        var count = 0
        var i = start
        while i < end {
            while i < end, isBlank(bytes[i]) { i += 1 }
            if i == end { break }
            let fieldStart = i
            while i < end, !isBlank(bytes[i]) { i += 1 }
            guard count < FieldRanges.capacity else { return nil }
            fields[count] = fieldStart..<i
            count += 1
        }
        return count
    }

    /// Parses a non-negative decimal byte count of at most 10 digits.
    @inline(__always)
    static func parseCount(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 10 else { return nil }
        var value = 0
        for i in range {
            let digit = bytes[i] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }

    /// Whether `bytes[range]` equals `name` (uppercase ASCII) ignoring case.
    ///
    /// Only lowercase letters are folded: clearing bit 5 of any byte would also let control
    /// bytes pass for punctuation (`\r` for `-`, `\u{0B}` for `+`, `\u{0F}` for `/`).
    @inline(__always)
    static func matches(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ name: StaticString) -> Bool {
        guard range.count == name.utf8CodeUnitCount else { return false }
        let expected = name.utf8Start
        for (offset, i) in range.enumerated() {
            let byte = bytes[i]
            let folded = byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") ? byte & 0xDF : byte
            if folded != expected[offset] { return false }
        }
        return true
    }

    @inline(__always)
    static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}

/// Up to six field ranges of a control line, stored inline (no allocation per frame).
struct FieldRanges {
    static let capacity = 6
    private var storage: (Range<Int>, Range<Int>, Range<Int>, Range<Int>, Range<Int>, Range<Int>) =
        (0..<0, 0..<0, 0..<0, 0..<0, 0..<0, 0..<0)

    @inline(__always)
    subscript(index: Int) -> Range<Int> {
        get {
            switch index {
            case 0: return storage.0
            case 1: return storage.1
            case 2: return storage.2
            case 3: return storage.3
            case 4: return storage.4
            default: return storage.5
            }
        }
        set {
            switch index {
            case 0: storage.0 = newValue
            case 1: storage.1 = newValue
            case 2: storage.2 = newValue
            case 3: storage.3 = newValue
            case 4: storage.4 = newValue
            default: storage.5 = newValue
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
