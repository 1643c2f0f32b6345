import FoundationEssentials

/// Serialises JSON the way Go's `encoding/json` does, so that tokens and `jti`
/// hashes match those produced by github.com/nats-io/jwt.
///
/// Object keys are sorted by their UTF-8 bytes; strings escape `<`, `>`, `&`,
/// U+2028 and U+2029 like Go's HTML-safe encoder; integral numbers print
/// without a fraction.
enum GoJSON {
    /// One member of an ordered object.
    typealias Member = (key: String, value: JSONValue)

    static func serialize(_ value: JSONValue) -> String {
        var out = ""
        write(value, into: &out)
        return out
    }

    /// Serialises members in the given order (Go struct field order).
    static func serialize(orderedMembers members: [Member]) -> String {
        var out = "{"
        for (index, member) in members.enumerated() {
            if index > 0 { out += "," }
            writeString(member.key, into: &out)
            out += ":"
            write(member.value, into: &out)
        }
        out += "}"
        return out
    }

    private static func write(_ value: JSONValue, into out: inout String) {
        switch value {
        case .null: out += "null"
        case let .bool(flag): out += flag ? "true" : "false"
        case let .int(number): out += String(number)
        case let .double(number): out += format(number)
        case let .string(text): writeString(text, into: &out)
        case let .array(items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                write(item, into: &out)
            }
            out += "]"
        case let .object(members):
            let sorted = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            out += serialize(orderedMembers: sorted.map { (key: $0.key, value: $0.value) })
        }
    }

    private static func format(_ number: Double) -> String {
        guard number.isFinite else { return "null" }
        if number == number.rounded(), abs(number) < 1e21 {
            if let exact = Int64(exactly: number) { return String(exact) }
            return "\(Decimal(number))"  // integral, beyond Int64: all digits, as Go prints it
        }
        return "\(number)"
    }

    static func writeString(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "<", ">", "&", "\u{2028}", "\u{2029}":
                out += unicodeEscape(scalar)
            default:
                if scalar.value < 0x20 {
                    out += unicodeEscape(scalar)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private static func unicodeEscape(_ scalar: Unicode.Scalar) -> String {
        let digits = String(scalar.value, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
    }
}
