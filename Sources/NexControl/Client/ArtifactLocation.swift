/// Where a node fetches a workload artifact from: the `location` of a ``DeployRequest``.
///
/// ```swift
/// let location = try ArtifactLocation("nats://NEXCLIFILES/echo")   // .objectStore(bucket:key:)
/// let local = try ArtifactLocation("file:///opt/workloads/echo")    // .file(path:)
/// ```
public enum ArtifactLocation: Sendable, Equatable, CustomStringConvertible {
    /// An object in a JetStream object store bucket: `nats://BUCKET/KEY`.
    case objectStore(bucket: String, key: String)
    /// A file on the node's host: `file:///absolute/path`.
    case file(path: String)

    /// Parses `nats://BUCKET/KEY` (the key may contain `/`) or `file:///absolute/path`; `%XX`
    /// escapes in the key or path are decoded.
    public init(_ url: String) throws(WorkloadSubmissionError) {
        if url.hasPrefix("nats://") {
            let rest = url.dropFirst("nats://".count)
            guard let slash = rest.firstIndex(of: "/") else {
                throw .invalidLocation(url, reason: "expected nats://BUCKET/KEY")
            }
            let bucket = String(rest[..<slash])
            guard !bucket.isEmpty, let key = Self.percentDecoded(rest[rest.index(after: slash)...]), !key.isEmpty else {
                throw .invalidLocation(url, reason: "expected nats://BUCKET/KEY with a bucket and a key")
            }
            self = .objectStore(bucket: bucket, key: key)
        } else if url.hasPrefix("file://") {
            guard let path = Self.percentDecoded(url.dropFirst("file://".count)), path.hasPrefix("/"), path.count > 1 else {
                throw .invalidLocation(url, reason: "expected file:///absolute/path")
            }
            self = .file(path: path)
        } else {
            throw .invalidLocation(url, reason: "use nats://BUCKET/KEY or file:///absolute/path")
        }
    }

    /// The URL, as it travels in `location`: bytes of the key or path other than letters,
    /// digits, `/` and `-._~!$&'()*+,;=:@` are percent-encoded (so `%`, `?`, `#`, spaces and
    /// control characters survive a node's strict parsing).
    public var url: String {
        switch self {
        case let .objectStore(bucket, key): "nats://\(bucket)/\(Self.percentEncoded(key))"
        case let .file(path): "file://\(Self.percentEncoded(path))"
        }
    }

    static func percentEncoded(_ text: String) -> String {
        let safe = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/-._~!$&'()*+,;=:@".utf8)
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            if safe.contains(byte) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `text` with `%XX` escapes decoded; nil for a bad escape or bytes that are not UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        guard text.contains("%") else { return String(text) }
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let byte = bytes.popFirst() {
            guard byte == UInt8(ascii: "%") else { out.append(byte); continue }
            guard bytes.count >= 2, let value = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) else {
                return nil
            }
            out.append(value)
            bytes = bytes.dropFirst(2)
        }
        return String(validating: out, as: UTF8.self)
    }

    /// The ``url``.
    public var description: String { url }
}
