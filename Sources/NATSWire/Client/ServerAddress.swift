/// One entry of the client's server list, parsed from a URL.
struct ServerAddress: Sendable, Hashable, CustomStringConvertible {
    var host: String
    var port: Int
    var tls: Bool
    var user: String?
    var password: String?
    /// Learned from a server's `connect_urls` rather than configured.
    var discovered = false

    var description: String { "\(tls ? "tls" : "nats")://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    /// Parses `nats://[user[:pass]@]host[:port]`, `tls://...`, or bare `host[:port]` (IPv6 in brackets).
    init(parsing url: String, discovered: Bool = false) throws(NATSError) {
        var rest = Substring(url.trimmingCharacters(in: " \t"))
        var scheme = "nats"
        if let range = rest.firstRange(of: "://") {
            scheme = rest[..<range.lowerBound].lowercased()
            rest = rest[range.upperBound...]
        }
        switch scheme {
        case "nats": tls = false
        case "tls": tls = true
        default: throw NATSError.invalidURL(url, reason: "scheme must be nats:// or tls://")
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = String(userInfo[..<colon]).removingPercentEncodingIfPossible
                password = String(userInfo[userInfo.index(after: colon)...]).removingPercentEncodingIfPossible
            } else {
                user = String(userInfo).removingPercentEncodingIfPossible
            }
        }
        var hostPart = rest
        var portPart: Substring?
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else { throw NATSError.invalidURL(url, reason: "unclosed '['") }
            let after = hostPart[hostPart.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() } else if !after.isEmpty {
                throw NATSError.invalidURL(url, reason: "unexpected text after ']'")
            }
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
        } else if let colon = hostPart.lastIndex(of: ":") {
            portPart = hostPart[hostPart.index(after: colon)...]
            hostPart = hostPart[..<colon]
        }
        guard !hostPart.isEmpty else { throw NATSError.invalidURL(url, reason: "no host") }
        host = String(hostPart)
        if let portPart {
            guard let value = Int(portPart), (1...65535).contains(value) else {
                throw NATSError.invalidURL(url, reason: "port must be 1-65535")
            }
            port = value
        } else {
            port = 4222
        }
        self.discovered = discovered
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> Substring {
        let chars = Set(set)
        var slice = Substring(self)
        while let first = slice.first, chars.contains(first) { slice.removeFirst() }
        while let last = slice.last, chars.contains(last) { slice.removeLast() }
        return slice
    }
}

extension String {
    /// Decodes `%XX` escapes in URL user info; leaves the text unchanged if an escape is malformed.
    var removingPercentEncodingIfPossible: String {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return self }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
