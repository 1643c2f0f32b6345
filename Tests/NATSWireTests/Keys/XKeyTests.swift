import Foundation
import Testing
@testable import NATSWire

@Suite("XKeys")
struct XKeyTests {
    static let vectors = KeyFixtures.xkeys

    var alice: XKeyPair { get throws { try XKeyPair(seed: Self.vectors.alice.seed) } }
    var bob: XKeyPair { get throws { try XKeyPair(seed: Self.vectors.bob.seed) } }

    @Test func seedToPublicKey() throws {
        for vector in [Self.vectors.alice, Self.vectors.bob] {
            let pair = try XKeyPair(seed: vector.seed)
            #expect(vector.seed.hasPrefix("SX"))
            #expect(pair.publicKey == vector.public_key)
            #expect(pair.publicKey.hasPrefix("X"))
            #expect(pair.publicKeyBytes == [UInt8](hex: vector.public_key_raw_hex))
            #expect(pair.seed == vector.seed)
            #expect(try XKeyPair(rawSeed: [UInt8](hex: vector.raw_seed_hex)).publicKey == vector.public_key)
            #expect(XKeyPair.isValidPublicKey(vector.public_key))
        }
    }

    @Test(arguments: vectors.sealed_alice_to_bob)
    func opensPythonSealedMessages(vector: KeyFixtures.XKeyFile.Sealed) throws {
        let sealed = try #require(Data(base64Encoded: vector.sealed_b64)).map { $0 }
        let plaintext = [UInt8](hex: vector.plaintext_hex)
        #expect(sealed.count == plaintext.count + 44)
        #expect(try bob.open(sealed, from: Self.vectors.alice.public_key) == plaintext)
        // The NaCl box key is shared, so the sender can open it too.
        #expect(try alice.open(sealed, from: Self.vectors.bob.public_key) == plaintext)
        // With the same nonce our output is byte-identical to PyNaCl's.
        let ours = try alice.seal(plaintext, to: Self.vectors.bob.public_key, nonce: [UInt8](hex: vector.nonce_hex))
        #expect(ours == sealed)
    }

    @Test func sealRoundTripsWithFreshNonces() throws {
        let me = try XKeyPair.generate()
        let peer = try XKeyPair.generate()
        #expect(me.seed.hasPrefix("SX") && me.seed.count == 58)
        #expect(me.publicKey.count == 56)
        #expect(try XKeyPair(seed: me.seed).publicKey == me.publicKey)
        let message = Array("attack at dawn".utf8)
        let first = try me.seal(message, to: peer.publicKey)
        let second = try me.seal(message, to: peer.publicKey)
        #expect(first.starts(with: Array("xkv1".utf8)))
        #expect(first != second)
        #expect(try peer.open(first, from: me.publicKey) == message)
        #expect(try peer.open(second, from: me.publicKey) == message)
        #expect(try peer.open(me.seal([], to: peer.publicKey), from: me.publicKey) == [])
    }

    @Test func rejectsShortMessages() throws {
        let bob = try bob
        for length in [0, 4, 28] {
            let input = Array("xkv1".utf8) + [UInt8](repeating: 0, count: max(0, length - 4))
            #expect(throws: NKeyError.sealedMessageTooShort(length: length, minimum: 29)) {
                try bob.open(input.prefix(length), from: Self.vectors.alice.public_key)
            }
        }
        // Longer than the header but shorter than a MAC.
        #expect {
            try bob.open(Array("xkv1".utf8) + [UInt8](repeating: 0, count: 30), from: Self.vectors.alice.public_key)
        } throws: { error in
            if case .decryptionFailed? = error as? NKeyError { true } else { false }
        }
    }

    @Test func rejectsWrongVersion() throws {
        var sealed = try #require(Data(base64Encoded: Self.vectors.sealed_alice_to_bob[0].sealed_b64)).map { $0 }
        sealed[3] = UInt8(ascii: "2")
        #expect(throws: NKeyError.unsupportedSealVersion(found: "\"xkv2\"")) {
            try bob.open(sealed, from: Self.vectors.alice.public_key)
        }
        sealed.replaceSubrange(0..<4, with: [0, 1, 2, 3])
        #expect(throws: NKeyError.unsupportedSealVersion(found: "0x00010203")) {
            try bob.open(sealed, from: Self.vectors.alice.public_key)
        }
    }

    @Test func rejectsTamperedMACCiphertextAndWrongSender() throws {
        let original = try #require(Data(base64Encoded: Self.vectors.sealed_alice_to_bob[0].sealed_b64)).map { $0 }
        for index in [28, 28 + 15, original.count - 1, 4] { // MAC, MAC end, ciphertext, nonce
            var sealed = original
            sealed[index] ^= 0x01
            #expect(throws: NKeyError.self) { try bob.open(sealed, from: Self.vectors.alice.public_key) }
        }
        let stranger = try XKeyPair.generate()
        #expect {
            try bob.open(original, from: stranger.publicKey)
        } throws: { error in
            if case .decryptionFailed? = error as? NKeyError { true } else { false }
        }
    }

    @Test func rejectsNonCurveKeys() throws {
        let user = try NKeyPair.generate(.user)
        #expect {
            try alice.seal([1, 2, 3], to: user.publicKey)
        } throws: { error in
            guard case let .invalidPrefix(_, expected, found)? = error as? NKeyError else { return false }
            return expected.contains("curve") && found.contains("user")
        }
        #expect(throws: NKeyError.self) { try XKeyPair(seed: user.seed) }
        #expect(throws: NKeyError.self) { try XKeyPair(seed: Self.vectors.alice.public_key) }
        #expect(throws: NKeyError.self) { try XKeyPair(rawSeed: [1, 2, 3]) }
        #expect(!XKeyPair.isValidPublicKey(user.publicKey))
    }

    @Test(.enabled(if: PythonNaCl.isAvailable, "python3 with pynacl is not installed; skipping the PyNaCl cross-check"))
    func swiftSealedMessageOpensInPyNaCl() throws {
        let plaintext = Array("sealed by Swift, opened by PyNaCl ✓".utf8)
        let sealed = try alice.seal(plaintext, to: Self.vectors.bob.public_key)
        let script = """
        import sys, base64, nacl.public
        bob = nacl.public.PrivateKey(bytes.fromhex(sys.argv[1]))
        alice_pub = nacl.public.PublicKey(bytes.fromhex(sys.argv[2]))
        blob = base64.b64decode(sys.argv[3])
        assert blob[:4] == b"xkv1", blob[:4]
        sys.stdout.write(nacl.public.Box(bob, alice_pub).decrypt(blob[4:]).hex())
        """
        let output = try PythonNaCl.run([
            "-c", script, Self.vectors.bob.raw_seed_hex, Self.vectors.alice.public_key_raw_hex,
            Data(sealed).base64EncodedString(),
        ])
        #expect(output == plaintext.hex)
    }
}
