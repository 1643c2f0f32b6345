import Foundation
import Testing
@testable import NATSWire

@Suite("NKeys")
struct NKeyTests {
    static let vectors = KeyFixtures.nkeys
    static var message: [UInt8] { [UInt8](hex: vectors.message_hex) }

    @Test func prefixBytesAndCharacters() {
        let expected: [(NKeyPrefix, UInt8, Character)] = [
            (.seed, 18 << 3, "S"), (.privateKey, 15 << 3, "P"), (.server, 13 << 3, "N"),
            (.cluster, 2 << 3, "C"), (.operator, 14 << 3, "O"), (.account, 0, "A"),
            (.user, 20 << 3, "U"), (.curve, 23 << 3, "X"),
        ]
        for (prefix, byte, char) in expected {
            #expect(prefix.rawValue == byte)
            #expect(prefix.character == char)
            #expect(NKeyPrefix(character: char) == prefix)
            // The first base32 character of a key is the top 5 bits of the prefix byte.
            #expect(Base32.encode([byte, 0]).first == char)
        }
        #expect(NKeyPrefix(character: "Z") == nil)
    }

    @Test func crc16KnownAnswers() {
        for vector in Self.vectors.crc16 {
            #expect(CRC16.checksum([UInt8](hex: vector.input_hex)) == vector.crc)
        }
        #expect(CRC16.checksum(Array("123456789".utf8)) == 0x31C3) // XMODEM check value
    }

    @Test func base32KnownAnswers() throws {
        for vector in Self.vectors.base32 {
            let bytes = [UInt8](hex: vector.hex)
            #expect(Base32.encode(bytes) == vector.text)
            #expect(try Base32.decode(vector.text) == bytes)
        }
    }

    @Test func base32RejectsBadInput() {
        for bad in ["MZXW6=", "mzxw6", "MZXW1", "MZX", "M"] {
            #expect(throws: NKeyError.self, "\(bad)") { try Base32.decode(bad) }
        }
        do {
            _ = try Base32.decode("MZ!W6")
            Issue.record("expected an error")
        } catch let error as NKeyError {
            guard case let .invalidEncoding(_, reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(reason.contains("'!'") && reason.contains("offset 2"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test(arguments: vectors.keys)
    func seedToPublicKeyAndSignature(vector: KeyFixtures.NKeyFile.Key) throws {
        let pair = try NKeyPair(seed: vector.seed)
        #expect(pair.publicKey == vector.public_key)
        #expect(pair.publicKeyBytes == [UInt8](hex: vector.public_key_raw_hex))
        #expect(pair.seed == vector.seed)
        #expect(pair.seed.count == 58)
        #expect(pair.publicKey.count == 56)
        #expect(pair.type.character == Character(vector.prefix_char))
        #expect(pair.publicKey.first == Character(vector.prefix_char))

        let fromRaw = try NKeyPair(rawSeed: [UInt8](hex: vector.raw_seed_hex), type: pair.type)
        #expect(fromRaw.publicKey == vector.public_key)
        #expect(fromRaw.seed == vector.seed)

        // Ed25519 is deterministic: our signature must equal Python nkeys' byte for byte.
        let signature = pair.sign(Self.message)
        #expect(signature.hex == vector.signature_hex)
        #expect(pair.verify(signature: [UInt8](hex: vector.signature_hex), message: Self.message))
        #expect(try NKeyPair.verify(publicKey: vector.public_key, signature: signature, message: Self.message))
        #expect(pair.signNonceBase64URL(Self.vectors.nonce) == vector.nonce_signature_b64url)

        var tampered = Self.message
        tampered[0] ^= 1
        #expect(!pair.verify(signature: signature, message: tampered))
        #expect(try !NKeyPair.verify(publicKey: vector.public_key, signature: signature, message: tampered))
        #expect(!pair.verify(signature: signature.dropLast(), message: Self.message))
        #expect(NKeyPair.isValidPublicKey(vector.public_key))
        #expect(NKeyPair.isValidPublicKey(vector.public_key, type: pair.type))
        #expect(!NKeyPair.isValidPublicKey(vector.seed))
    }

    @Test(arguments: [NKeyPrefix.operator, .account, .user, .server, .cluster])
    func generateRoundTrips(type: NKeyPrefix) throws {
        let pair = try NKeyPair.generate(type)
        #expect(pair.type == type)
        #expect(pair.seed.count == 58)
        #expect(pair.seed.hasPrefix("S\(type.character)"))
        #expect(pair.publicKey.count == 56)
        #expect(pair.publicKey.first == type.character)
        let again = try NKeyPair(seed: pair.seed)
        #expect(again.publicKey == pair.publicKey)
        let signature = pair.sign(Array("hello".utf8))
        #expect(try NKeyPair.verify(publicKey: pair.publicKey, signature: signature, message: Array("hello".utf8)))
        #expect(try NKeyPair.generate(type).publicKey != pair.publicKey)
    }

    @Test func generateRejectsNonSigningRoles() {
        for type in [NKeyPrefix.curve, .seed, .privateKey] {
            #expect(throws: NKeyError.self) { try NKeyPair.generate(type) }
        }
        #expect {
            try NKeyPair.generate(.curve)
        } throws: { error in
            guard case let .unsupportedKeyType(prefix, reason)? = error as? NKeyError else { return false }
            return prefix == .curve && reason.contains("XKeyPair")
        }
    }

    @Test func seedWithWhitespaceIsAccepted() throws {
        let vector = Self.vectors.keys[0]
        #expect(try NKeyPair(seed: "  \(vector.seed)\r\n").publicKey == vector.public_key)
    }

    @Test func wrongChecksumIsRejected() throws {
        let seed = Self.vectors.keys.first { $0.type == "user" }!.seed
        // Change one character in the middle: still valid base32, CRC no longer matches.
        var chars = Array(seed)
        chars[20] = chars[20] == "A" ? "B" : "A"
        let bad = String(chars)
        #expect {
            try NKeyPair(seed: bad)
        } throws: { error in
            guard case .invalidChecksum? = error as? NKeyError else { return false }
            // The message must not leak the seed.
            return !"\(error)".contains(String(bad.dropFirst(2).prefix(10)))
        }
        var pub = Array(Self.vectors.keys[0].public_key)
        pub[30] = pub[30] == "A" ? "B" : "A"
        #expect {
            try NKeyPair.verify(publicKey: String(pub), signature: [UInt8](repeating: 0, count: 64), message: [1])
        } throws: { error in
            if case .invalidChecksum? = error as? NKeyError { true } else { false }
        }
    }

    @Test func wrongPrefixesAreRejected() {
        let invalid = Self.vectors.invalid
        // A public key where a seed is expected.
        #expect {
            try NKeyPair(seed: invalid.public_key_not_seed)
        } throws: { error in
            guard case let .invalidPrefix(_, expected, found)? = error as? NKeyError else { return false }
            return expected.contains("seed") && found.contains("user")
        }
        // A seed whose role is "private".
        #expect {
            try NKeyPair(seed: invalid.seed_with_private_role)
        } throws: { error in
            guard case let .invalidPrefix(_, _, found)? = error as? NKeyError else { return false }
            return found.contains("private")
        }
        // A seed used as a public key.
        #expect {
            try NKeyPair.verify(publicKey: Self.vectors.keys[0].seed, signature: [], message: [])
        } throws: { error in
            if case .invalidPrefix? = error as? NKeyError { true } else { false }
        }
        #expect {
            try NKeyPair.verify(publicKey: invalid.public_key_with_seed_prefix, signature: [], message: [])
        } throws: { error in
            guard case let .invalidPrefix(_, _, found)? = error as? NKeyError else { return false }
            return found.contains("seed")
        }
        // A curve seed is valid but not an Ed25519 key.
        #expect {
            try NKeyPair(seed: invalid.curve_seed)
        } throws: { error in
            if case .unsupportedKeyType(.curve, _)? = error as? NKeyError { true } else { false }
        }
        #expect(throws: NKeyError.self) { try NKeyPair(rawSeed: [UInt8](repeating: 1, count: 32), type: .curve) }
    }

    @Test func truncatedSeedsAreRejected() {
        let seed = Self.vectors.keys[0].seed
        #expect(throws: NKeyError.self) { try NKeyPair(seed: String(seed.dropLast(2))) }
        #expect(throws: NKeyError.self) { try NKeyPair(seed: String(seed.prefix(10))) }
        #expect(throws: NKeyError.self) { try NKeyPair(seed: "") }
        #expect {
            try NKeyPair(seed: Self.vectors.invalid.seed_truncated_payload)
        } throws: { error in
            guard case let .invalidLength(_, expected, found)? = error as? NKeyError else { return false }
            return expected == 32 && found == 31
        }
        #expect(throws: NKeyError.self) { try NKeyPair(rawSeed: [UInt8](repeating: 1, count: 31), type: .user) }
    }

    @Test func badBase32CharactersAreRejected() {
        let seed = Self.vectors.keys[0].seed
        for replacement in ["1", "8", "a", "=", "é"] {
            var chars = Array(seed)
            chars[10] = Character(replacement)
            #expect {
                try NKeyPair(seed: String(chars))
            } throws: { error in
                if case .invalidEncoding? = error as? NKeyError { true } else { false }
            }
        }
    }

    @Test func errorsSummariseSeeds() {
        let summary = NKeyError.summarize(Self.vectors.keys[0].seed)
        #expect(summary.hasPrefix("\"SO…\""))
        #expect(summary.contains("58 chars"))
        #expect(NKeyError.summarize(Self.vectors.keys[0].public_key).contains("…"))
    }
}
