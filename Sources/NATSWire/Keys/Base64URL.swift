import FoundationEssentials

/// Base64url without padding (RFC 4648 §5), as used by JWTs and the NATS
/// CONNECT `sig` field.
enum Base64URL {
    /// Encodes `bytes` without `=` padding.
    static func encode(_ bytes: some Collection<UInt8>) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return String(text.map { char -> Character in
            switch char {
            case "+": "-"
            case "/": "_"
            default: char
            }
        })
    }

    /// Decodes unpadded base64url; returns `nil` for any other character,
    /// padding included, or an impossible length.
    static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var standard = [UInt8]()
        standard.reserveCapacity(text.utf8.count + 3)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"):
                standard.append(byte)
            case UInt8(ascii: "-"): standard.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): standard.append(UInt8(ascii: "/"))
            default: return nil
            }
        }
        switch standard.count % 4 {
        case 1: return nil
        case 2: standard.append(contentsOf: [UInt8(ascii: "="), UInt8(ascii: "=")])
        case 3: standard.append(UInt8(ascii: "="))
        default: break
        }
        guard let data = Data(base64Encoded: Data(standard)) else { return nil }
        return Array(data)
    }
}
