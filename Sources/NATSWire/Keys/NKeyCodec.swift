/// Encoding and decoding of NKey strings: prefix byte(s) ‖ key ‖ CRC-16 (LE), base32.
enum NKeyCodec {
    /// Length of raw Ed25519 seeds, Ed25519 public keys and Curve25519 keys.
    static let keyLength = 32

    /// Encodes a public key (or other single-prefix key) as `prefix ‖ raw ‖ crc`.
    static func encode(prefix: NKeyPrefix, raw: some Collection<UInt8>) -> String {
        var body = [prefix.rawValue]
        body.append(contentsOf: raw)
        return finish(&body)
    }

    /// Encodes a seed: two prefix bytes carrying `S` and the role, then the raw seed.
    static func encodeSeed(role: NKeyPrefix, raw: SecretBytes) -> String {
        var body = [
            NKeyPrefix.seed.rawValue | (role.rawValue >> 5),
            (role.rawValue & 31) << 3,
        ]
        raw.withUnsafeBytes { body.append(contentsOf: $0) }
        return finish(&body)
    }

    private static func finish(_ body: inout [UInt8]) -> String {
        let crc = CRC16.checksum(body)
        body.append(UInt8(truncatingIfNeeded: crc))
        body.append(UInt8(truncatingIfNeeded: crc >> 8))
        defer { secureWipe(&body) }
        return Base32.encode(body)
    }

    /// Base32-decodes `text` and verifies and strips its trailing CRC-16.
    static func decodeChecked(_ text: String) throws -> [UInt8] {
        var raw = try Base32.decode(text)
        guard raw.count >= 3 else {
            secureWipe(&raw)
            throw NKeyError.invalidLength(input: NKeyError.summarize(text), expected: keyLength, found: 0)
        }
        let found = UInt16(raw[raw.count - 2]) | (UInt16(raw[raw.count - 1]) << 8)
        let expected = CRC16.checksum(raw[..<(raw.count - 2)])
        guard found == expected else {
            secureWipe(&raw)
            throw NKeyError.invalidChecksum(input: NKeyError.summarize(text), expected: expected, found: found)
        }
        raw.removeLast(2)
        return raw
    }

    /// Decodes a public key and checks that its role is accepted by `allowed`.
    ///
    /// - Parameter expected: how to describe the accepted roles in an error.
    static func decodePublic(
        _ text: String,
        expected: String,
        allowed: (NKeyPrefix) -> Bool
    ) throws -> (prefix: NKeyPrefix, key: [UInt8]) {
        let body = try decodeChecked(text)
        let prefixByte = body[0]
        guard let prefix = NKeyPrefix(rawValue: prefixByte), allowed(prefix) else {
            throw NKeyError.invalidPrefix(
                input: NKeyError.summarize(text), expected: expected, found: describe(prefixByte)
            )
        }
        guard body.count == 1 + keyLength else {
            throw NKeyError.invalidLength(input: NKeyError.summarize(text), expected: keyLength, found: body.count - 1)
        }
        return (prefix, Array(body.dropFirst()))
    }

    /// Decodes a seed into its role and raw 32-byte seed; temporaries are wiped.
    static func decodeSeed(_ text: String) throws -> (role: NKeyPrefix, raw: SecretBytes) {
        var body = try decodeChecked(text)
        defer { secureWipe(&body) }
        guard body.count >= 2 else {
            throw NKeyError.invalidLength(input: NKeyError.summarize(text), expected: keyLength, found: 0)
        }
        let seedByte = body[0] & 0b1111_1000
        guard seedByte == NKeyPrefix.seed.rawValue else {
            throw NKeyError.invalidPrefix(
                input: NKeyError.summarize(text), expected: NKeyPrefix.seed.description, found: describe(seedByte)
            )
        }
        let roleByte = ((body[0] & 0b0000_0111) << 5) | ((body[1] & 0b1111_1000) >> 3)
        guard let role = NKeyPrefix(rawValue: roleByte), role.isSeedRole else {
            throw NKeyError.invalidPrefix(
                input: NKeyError.summarize(text),
                expected: "a seed role (operator, account, user, server, cluster or curve)",
                found: describe(roleByte)
            )
        }
        guard body.count == 2 + keyLength else {
            throw NKeyError.invalidLength(input: NKeyError.summarize(text), expected: keyLength, found: body.count - 2)
        }
        return (role, SecretBytes(copying: body[2...]))
    }

    /// Describes a prefix byte, naming it when it is a known role.
    static func describe(_ byte: UInt8) -> String {
        if let prefix = NKeyPrefix(rawValue: byte) {
            return prefix.description
        }
        return "unknown prefix byte 0x" + String(byte, radix: 16, uppercase: true)
    }
}
