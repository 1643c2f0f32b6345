import FoundationEssentials
import NATSWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The SHA-256 of a workload artifact, as lowercase hex: what a deploy JWT's `nats.hash`
/// claims and what the node checks the fetched artifact against.
///
/// ```swift
/// let hash = try ArtifactDigest.sha256Hex(ofFile: "/usr/local/bin/echo-service")
/// ```
///
/// For an artifact in an object store, ``NexClient/artifactHash(of:jsDomain:)`` reads the
/// digest the store recorded.
public enum ArtifactDigest {
    /// SHA-256 of `bytes`, lowercase hex.
    public static func sha256Hex(_ bytes: some Collection<UInt8>) -> String {
        let hasher = SHA256Hasher()
        Array(bytes).withUnsafeBytes { hasher.update($0) }
        return hex(hasher.finalize())
    }

    /// SHA-256 of the file at `path`, read in 64 KiB pieces (never held in memory whole).
    ///
    /// - Throws: ``WorkloadSubmissionError/unreadableArtifact(path:reason:)`` naming the file.
    public static func sha256Hex(ofFile path: String) throws(WorkloadSubmissionError) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw .unreadableArtifact(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        let hasher = SHA256Hasher()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(descriptor, buffer.baseAddress, buffer.count)
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw .unreadableArtifact(path: path, reason: String(cString: strerror(errno)))
            }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
        return hex(hasher.finalize())
    }

    /// Converts an object store digest, `SHA-256=` and base64url (padded or not) of the 32-byte
    /// digest (what NATS object stores record), to lowercase hex; nil when it is not one.
    package static func hex(fromObjectDigest digest: String) -> String? {
        let prefix = "SHA-256="
        guard digest.uppercased().hasPrefix(prefix) else { return nil }
        var text = String(digest.dropFirst(prefix.count).map { character -> Character in
            switch character {
            case "-": "+"
            case "_": "/"
            default: character
            }
        })
        while text.utf8.count % 4 != 0 { text += "=" }
        guard let bytes = Data(base64Encoded: text), bytes.count == 32 else { return nil }
        return hex(Array(bytes))
    }

    /// Whether `text` is a SHA-256 digest as 64 hex digits.
    package static func isSHA256Hex(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { byte in
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
