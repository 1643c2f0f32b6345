/// Redacting credentials from text that names server URLs.
extension String {
    /// This text with the credentials of any `scheme://user:password@host` URL in it replaced by
    /// `***` (`nats://***@host:4222`), so that an error message or a log line that names a
    /// server URL never carries its password or token.
    public var redactingURLCredentials: String {
        var result = ""
        var rest = Substring(self)
        while let scheme = rest.firstRange(of: "://") {
            result += rest[..<scheme.upperBound]
            rest = rest[scheme.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == " " || $0 == "," || $0 == "'" || $0 == "\"" } ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@") {
                result += "***"
                rest = rest[at...]
            }
        }
        return result + rest
    }
}
