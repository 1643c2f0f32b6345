/// Errors thrown while decoding, creating or using ``NKeyPair`` and ``XKeyPair`` keys.
///
/// Key strings are only ever reported in summarised form (`NKeyError.summarize(_:)`):
/// seeds are reduced to their two role characters so secrets never end up in logs.
public enum NKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text is not valid unpadded base32 (bad character or impossible length).
    case invalidEncoding(input: String, reason: String)
    /// The CRC-16 stored at the end of the key does not match its contents.
    case invalidChecksum(input: String, expected: UInt16, found: UInt16)
    /// The decoded key material has the wrong number of bytes.
    case invalidLength(input: String, expected: Int, found: Int)
    /// The key starts with a role other than the one required here.
    case invalidPrefix(input: String, expected: String, found: String)
    /// The operation does not apply to keys of this role (e.g. signing with a curve key).
    case unsupportedKeyType(NKeyPrefix, reason: String)
    /// A libsodium primitive reported failure.
    case sodiumFailure(operation: String)
    /// A sealed xkv1 message is too short to hold the version tag, the nonce and a box.
    case sealedMessageTooShort(length: Int, minimum: Int)
    /// A sealed message does not start with the `xkv1` version tag.
    case unsupportedSealVersion(found: String)
    /// The box did not authenticate: wrong sender or recipient key, or tampered data.
    case decryptionFailed(sender: String)

    /// One line saying what is wrong with the key.
    public var description: String {
        switch self {
        case let .invalidEncoding(input, reason):
            "invalid key encoding in \(input): \(reason)"
        case let .invalidChecksum(input, expected, found):
            "CRC16 checksum mismatch in \(input): computed \(Self.hex(expected)), key carries \(Self.hex(found))"
        case let .invalidLength(input, expected, found):
            "wrong key length in \(input): expected \(expected) bytes of key material, found \(found)"
        case let .invalidPrefix(input, expected, found):
            "wrong key prefix in \(input): expected \(expected), found \(found)"
        case let .unsupportedKeyType(prefix, reason):
            "unsupported key type \(prefix): \(reason)"
        case let .sodiumFailure(operation):
            "libsodium \(operation) failed"
        case let .sealedMessageTooShort(length, minimum):
            "sealed xkey message is \(length) bytes; it must be longer than \(minimum - 1)"
        case let .unsupportedSealVersion(found):
            "sealed xkey message has version tag \(found); expected \"xkv1\""
        case let .decryptionFailed(sender):
            "could not open sealed xkey message from \(sender): authentication failed"
        }
    }

    /// Summarises a key-like string for error messages without leaking secrets.
    ///
    /// Strings that may be seeds (starting with `S`) keep only their first two
    /// characters; other long strings keep their first 8 and last 4 characters.
    /// The total length is always included.
    package static func summarize(_ text: String) -> String {
        let count = text.count
        if text.hasPrefix("S") || text.hasPrefix("P") {
            return "\"\(text.prefix(2))…\" (\(count) chars)"
        }
        if count <= 16 {
            return "\"\(text)\" (\(count) chars)"
        }
        return "\"\(text.prefix(8))…\(text.suffix(4))\" (\(count) chars)"
    }

    private static func hex(_ value: UInt16) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
