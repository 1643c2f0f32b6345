import CSodium

/// A Curve25519 "xkey" (prefix `X`) for NaCl-box encryption, compatible with
/// the `xkv1` format of the Go and other NATS nkeys libraries.
///
/// A sealed message is `"xkv1"` ‖ 24-byte random nonce ‖ `crypto_box_easy`
/// output (16-byte Poly1305 MAC followed by the XSalsa20 ciphertext).
///
/// ```swift
/// let me = try XKeyPair(seed: "SXA…")
/// let sealed = try me.seal(Array("hi".utf8), to: peerPublicKey)
/// ```
public struct XKeyPair: Sendable {
    /// The version tag that starts every sealed message.
    public static let sealVersion = "xkv1"

    private static let versionBytes = Array(sealVersion.utf8)
    private static let nonceLength = Int(crypto_box_NONCEBYTES)
    private static let headerLength = versionBytes.count + nonceLength

    /// The encoded public key, `X…` (56 characters).
    public let publicKey: String

    /// The raw 32-byte Curve25519 public key.
    public let publicKeyBytes: [UInt8]

    /// The raw 32-byte Curve25519 secret key (the seed itself, as in Go nkeys).
    private let secretKey: SecretBytes

    /// Creates a fresh random curve key pair.
    public static func generate() throws -> XKeyPair {
        var raw = try Sodium.randomBytes(NKeyCodec.keyLength)
        defer { secureWipe(&raw) }
        return try XKeyPair(secret: SecretBytes(copying: raw))
    }

    /// Decodes an encoded curve seed (`SX…`, 58 characters). Surrounding
    /// whitespace is ignored.
    ///
    /// - Throws: ``NKeyError`` when the seed is malformed or its role is not `curve`.
    public init(seed: String) throws {
        let text = seed.trimmingASCIIWhitespace()
        let (role, raw) = try NKeyCodec.decodeSeed(text)
        guard role == .curve else {
            throw NKeyError.invalidPrefix(
                input: NKeyError.summarize(text), expected: "a curve seed (SX…)", found: "a \(role) seed"
            )
        }
        try self.init(secret: raw)
    }

    /// Builds a curve key pair from a raw 32-byte secret key.
    public init(rawSeed: some Collection<UInt8>) throws {
        guard rawSeed.count == NKeyCodec.keyLength else {
            throw NKeyError.invalidLength(input: "raw curve seed", expected: NKeyCodec.keyLength, found: rawSeed.count)
        }
        try self.init(secret: SecretBytes(copying: rawSeed))
    }

    private init(secret: SecretBytes) throws {
        try Sodium.ensureInitialized()
        var publicKey = [UInt8](repeating: 0, count: Int(crypto_scalarmult_BYTES))
        let status = secret.withUnsafeUInt8Pointer { crypto_scalarmult_base(&publicKey, $0) }
        guard status == 0 else {
            throw NKeyError.sodiumFailure(operation: "crypto_scalarmult_base")
        }
        self.secretKey = secret
        self.publicKeyBytes = publicKey
        self.publicKey = NKeyCodec.encode(prefix: .curve, raw: publicKey)
    }

    /// An Ed25519 signing key derived from this curve secret and `label` (SHA-256 of the
    /// label and the secret as its seed): whoever holds the curve seed can sign and check with
    /// it, nobody else can sign. The same seed and label always give the same key.
    package func derivedSigningKey(label: String, type: NKeyPrefix = .server) throws -> NKeyPair {
        var material = Array(label.utf8) + [0]
        secretKey.withUnsafeBytes { material.append(contentsOf: $0) }
        var seed = Digest.sha256(material)
        defer {
            secureWipe(&seed)
            secureWipe(&material)
        }
        return try NKeyPair(rawSeed: seed, type: type)
    }

    /// The encoded seed, `SX…` (58 characters). This is the secret.
    public var seed: String {
        NKeyCodec.encodeSeed(role: .curve, raw: secretKey)
    }

    /// Whether `publicKey` is a well-formed curve public key (`X…`).
    public static func isValidPublicKey(_ publicKey: String) -> Bool {
        (try? decodePeer(publicKey)) != nil
    }

    /// Encrypts and authenticates `plaintext` for `recipientPublicKey` with a
    /// fresh random nonce.
    ///
    /// - Returns: `"xkv1"` ‖ nonce ‖ box, i.e. 44 bytes longer than `plaintext`.
    /// - Throws: ``NKeyError`` when the recipient key is not a valid `X…` key or
    ///   libsodium refuses it (e.g. a low-order point).
    public func seal(_ plaintext: some Collection<UInt8>, to recipientPublicKey: String) throws -> [UInt8] {
        try seal(plaintext, to: recipientPublicKey, nonce: Sodium.randomBytes(Self.nonceLength))
    }

    /// ``seal(_:to:)`` with a caller-chosen nonce; for deterministic tests only.
    func seal(_ plaintext: some Collection<UInt8>, to recipientPublicKey: String, nonce: [UInt8]) throws -> [UInt8] {
        precondition(nonce.count == Self.nonceLength, "xkv1 nonces are 24 bytes")
        let recipient = try Self.decodePeer(recipientPublicKey)
        var out = Self.versionBytes + nonce
        let headerLength = out.count
        out.append(contentsOf: repeatElement(0, count: Int(crypto_box_MACBYTES) + plaintext.count))
        let status = withContiguousBytes(plaintext) { message, count in
            out.withUnsafeMutableBufferPointer { buffer in
                secretKey.withUnsafeUInt8Pointer { secret in
                    crypto_box_easy(
                        buffer.baseAddress! + headerLength, message, UInt64(count), nonce, recipient, secret
                    )
                }
            }
        }
        guard status == 0 else {
            throw NKeyError.sodiumFailure(operation: "crypto_box_easy")
        }
        return out
    }

    /// Authenticates and decrypts an `xkv1` message sealed by `senderPublicKey`
    /// for this key.
    ///
    /// - Throws: ``NKeyError/sealedMessageTooShort(length:minimum:)`` when the
    ///   input is 28 bytes or fewer, ``NKeyError/unsupportedSealVersion(found:)``
    ///   when it does not start with `xkv1`, an ``NKeyError`` for a malformed
    ///   sender key, and ``NKeyError/decryptionFailed(sender:)`` when the MAC
    ///   does not verify.
    public func open(_ sealed: some Collection<UInt8>, from senderPublicKey: String) throws -> [UInt8] {
        let input = Array(sealed)
        guard input.count > Self.headerLength else {
            throw NKeyError.sealedMessageTooShort(length: input.count, minimum: Self.headerLength + 1)
        }
        guard input.starts(with: Self.versionBytes) else {
            let tag = input.prefix(Self.versionBytes.count)
            let printable = tag.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
            let shown = printable
                ? "\"" + String(decoding: tag, as: UTF8.self) + "\""
                : "0x" + tag.map { byte in byte < 16 ? "0" + String(byte, radix: 16) : String(byte, radix: 16) }.joined()
            throw NKeyError.unsupportedSealVersion(found: shown)
        }
        let sender = try Self.decodePeer(senderPublicKey)
        let nonce = Array(input[Self.versionBytes.count..<Self.headerLength])
        let boxLength = input.count - Self.headerLength
        guard boxLength >= Int(crypto_box_MACBYTES) else {
            throw NKeyError.decryptionFailed(sender: NKeyError.summarize(senderPublicKey))
        }
        let plaintextLength = boxLength - Int(crypto_box_MACBYTES)
        // Never hand libsodium a null output pointer, even for an empty message.
        var plaintext = [UInt8](repeating: 0, count: max(1, plaintextLength))
        let status = input.withUnsafeBufferPointer { buffer in
            plaintext.withUnsafeMutableBufferPointer { out in
                secretKey.withUnsafeUInt8Pointer { secret in
                    crypto_box_open_easy(
                        out.baseAddress!, buffer.baseAddress! + Self.headerLength, UInt64(boxLength),
                        nonce, sender, secret
                    )
                }
            }
        }
        guard status == 0 else {
            throw NKeyError.decryptionFailed(sender: NKeyError.summarize(senderPublicKey))
        }
        plaintext.removeLast(plaintext.count - plaintextLength)
        return plaintext
    }

    private static func decodePeer(_ publicKey: String) throws -> [UInt8] {
        try NKeyCodec.decodePublic(
            publicKey.trimmingASCIIWhitespace(), expected: NKeyPrefix.curve.description, allowed: { $0 == .curve }
        ).key
    }
}
