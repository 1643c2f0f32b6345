/// RFC 4648 base32 with the standard alphabet and no padding, as used by NKeys.
enum Base32 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// Maps an ASCII byte to its 5-bit value, or `0xFF` when it is not in the alphabet.
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() {
            table[Int(byte)] = UInt8(index)
        }
        return table
    }()

    /// Encodes `bytes` without `=` padding.
    static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((buffer >> UInt32(bits)) & 0x1F)])
            }
        }
        if bits > 0 {
            out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 0x1F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes unpadded base32 text.
    ///
    /// - Throws: ``NKeyError/invalidEncoding(input:reason:)`` for a character
    ///   outside the alphabet (padding included) or a length no byte string encodes to.
    static func decode(_ text: String) throws -> [UInt8] {
        var input = Array(text.utf8)
        defer { secureWipe(&input) } // the text may be a seed
        switch input.count % 8 {
        case 1, 3, 6:
            throw NKeyError.invalidEncoding(
                input: NKeyError.summarize(text),
                reason: "base32 length \(input.count) cannot encode whole bytes"
            )
        default:
            break
        }
        var out = [UInt8]()
        out.reserveCapacity(input.count * 5 / 8)
        var buffer: UInt32 = 0
        var bits = 0
        for (offset, char) in input.enumerated() {
            let value = reverse[Int(char)]
            guard value != 0xFF else {
                throw NKeyError.invalidEncoding(
                    input: NKeyError.summarize(text),
                    reason: "invalid base32 character \(Self.describe(char)) at offset \(offset)"
                )
            }
            buffer = (buffer << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
            buffer &= (1 << UInt32(bits)) - 1
        }
        return out
    }

    private static func describe(_ byte: UInt8) -> String {
        if byte >= 0x21, byte < 0x7F {
            return "'\(Character(Unicode.Scalar(byte)))'"
        }
        return "byte 0x" + String(byte, radix: 16, uppercase: true)
    }
}
