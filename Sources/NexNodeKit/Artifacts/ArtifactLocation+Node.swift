import NexWorkloads
import NATSWire
import NexControl

extension ArtifactLocation {
    /// The longest location a node accepts, in bytes (Linux's `PATH_MAX`).
    public static let maxLocationLength = 4096

    /// The schemes a node fetches artifacts from, as error messages name them.
    static let acceptedSchemes = "use nats://BUCKET/KEY (object store) or file:///absolute/path"

    /// Parses a deploy request's `location` strictly, as the node must: it comes from the network.
    ///
    /// - `nats://BUCKET/KEY`: the bucket is the host (letters, digits, `-` and `_`, as object
    ///   store bucket names are), the key is the rest of the path, which may contain `/` and is
    ///   percent-decoded (as Nex 0.2's Go `url.Parse` does).
    /// - `file:///absolute/path`: the host must be empty; the path is percent-decoded.
    ///
    /// Schemes are case-insensitive. Control characters, a query or fragment (`?`, `#`; encode
    /// them as `%3F`, `%23`), bad percent escapes and locations over ``maxLocationLength`` bytes
    /// are refused.
    ///
    /// ```swift
    /// let location = try ArtifactLocation(validating: "nats://NEXCLIFILES/echo%20v2")
    /// // .objectStore(bucket: "NEXCLIFILES", key: "echo v2")
    /// ```
    ///
    /// - Throws: ``ArtifactError/invalidLocation(_:reason:)`` naming the location and what is wrong.
    public init(validating location: String) throws(ArtifactError) {
        func refuse(_ reason: String) -> ArtifactError { .invalidLocation(location, reason: reason) }
        if location.isEmpty { throw refuse("it is empty; \(Self.acceptedSchemes)") }
        let length = location.utf8.count
        if length > Self.maxLocationLength {
            throw refuse("it is \(length) bytes long; the limit is \(Self.maxLocationLength)")
        }
        if let bad = location.unicodeScalars.first(where: Self.isControl) {
            throw refuse("it contains the control character U+\(String(bad.value, radix: 16, uppercase: true))")
        }
        guard let separator = location.firstRange(of: "://") else {
            throw refuse("it has no scheme; \(Self.acceptedSchemes)")
        }
        let scheme = location[..<separator.lowerBound].lowercased()
        let rest = location[separator.upperBound...]
        if rest.contains("?") || rest.contains("#") {
            throw refuse("a query or fragment ('?', '#') is not allowed; percent-encode them as %3F and %23")
        }
        switch scheme {
        case "nats":
            guard let slash = rest.firstIndex(of: "/") else {
                throw refuse("expected nats://BUCKET/KEY, there is no key")
            }
            let bucket = String(rest[..<slash])
            let rawKey = rest[rest.index(after: slash)...]
            if bucket.isEmpty { throw refuse("the bucket is empty; expected nats://BUCKET/KEY") }
            guard bucket.utf8.allSatisfy(NATSSubject.isNameByte) else {
                throw refuse("bucket '\(bucket)' may only contain letters, digits, '-' and '_'")
            }
            if rawKey.isEmpty { throw refuse("the key is empty; expected nats://BUCKET/KEY") }
            let key = try Self.percentDecoded(rawKey, part: "key", refuse)
            self = .objectStore(bucket: bucket, key: key)
        case "file":
            guard rest.hasPrefix("/") else {
                throw refuse("expected file:///absolute/path (an empty host and an absolute path)")
            }
            let path = try Self.percentDecoded(rest, part: "path", refuse)
            if path.utf8.allSatisfy({ $0 == UInt8(ascii: "/") }) { throw refuse("the path is empty") }
            self = .file(path: path)
        default:
            throw refuse("scheme '\(ArtifactError.shown(scheme))' is not supported; \(Self.acceptedSchemes)")
        }
    }

    /// `text` with `%XX` escapes decoded; the result must be UTF-8 without control characters.
    private static func percentDecoded(
        _ text: Substring, part: String, _ refuse: (String) -> ArtifactError
    ) throws(ArtifactError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw refuse("the \(part) has a bad percent escape; use %XX with two hex digits")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw refuse("the \(part) is not UTF-8 once percent-decoded")
        }
        if let bad = decoded.unicodeScalars.first(where: isControl) {
            throw refuse("the \(part) contains the control character U+\(String(bad.value, radix: 16, uppercase: true)) once percent-decoded")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

}
