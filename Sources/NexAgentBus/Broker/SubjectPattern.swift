/// NATS subject rules for the bus: tokens separated by `.`, `*` matching one token and `>`
/// (last token only) matching one or more.
public enum SubjectPattern {
    /// Whether `subject` can be published to: non-empty tokens, no wildcards, no whitespace.
    public static func isValidPublishSubject(_ subject: String) -> Bool {
        isValid(subject, wildcards: false)
    }

    /// Whether `pattern` can be subscribed to: non-empty tokens; `*` and `>` only as whole
    /// tokens, `>` only last.
    public static func isValidPattern(_ pattern: String) -> Bool {
        isValid(pattern, wildcards: true)
    }

    private static func isValid(_ text: String, wildcards: Bool) -> Bool {
        let bytes = text.utf8
        guard !bytes.isEmpty else { return false }
        var tokenStart = true
        var tokenLength = 0
        var tokenIsWildcard = false
        var sawFullWildcard = false
        for byte in bytes {
            if sawFullWildcard { return false }  // anything after `>`
            switch byte {
            case UInt8(ascii: "."):
                if tokenLength == 0 { return false }
                tokenStart = true; tokenLength = 0; tokenIsWildcard = false
                continue
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"), 0:
                return false
            case UInt8(ascii: "*"), UInt8(ascii: ">"):
                if !wildcards || !tokenStart { return false }
                tokenIsWildcard = true
                if byte == UInt8(ascii: ">") { sawFullWildcard = true }
            default:
                if tokenIsWildcard { return false }
            }
            tokenStart = false
            tokenLength += 1
        }
        return tokenLength > 0
    }

    /// Whether the literal `subject` matches `pattern`.
    public static func matches(_ pattern: String, _ subject: String) -> Bool {
        var p = pattern.utf8[...]
        var s = subject.utf8[...]
        while true {
            let pToken = p.prefix { $0 != UInt8(ascii: ".") }
            let sToken = s.prefix { $0 != UInt8(ascii: ".") }
            if pToken.elementsEqual(">".utf8) { return !s.isEmpty }
            if s.isEmpty { return false }
            if !pToken.elementsEqual("*".utf8) && !pToken.elementsEqual(sToken) { return false }
            p = p[pToken.endIndex...]
            s = s[sToken.endIndex...]
            if p.isEmpty || s.isEmpty { return p.isEmpty && s.isEmpty }
            p = p.dropFirst()
            s = s.dropFirst()
        }
    }

    /// Whether every subject `inner` can match is also matched by `outer` (for permission
    /// checks on subscriptions: `agentint.a.*` is inside `agentint.a.>`, `agentint.>` is not).
    public static func contains(_ outer: String, _ inner: String) -> Bool {
        let o = outer.split(separator: ".", omittingEmptySubsequences: false)
        let i = inner.split(separator: ".", omittingEmptySubsequences: false)
        for (index, token) in o.enumerated() {
            if token == ">" { return i.count > index }
            guard index < i.count else { return false }
            if token == "*" {
                if i[index] == ">" { return false }
                continue
            }
            if token != i[index] { return false }
        }
        return o.count == i.count
    }
}
