import CSodium

/// An Ed25519 NKey identity (operator, account, user, server or cluster) that
/// can sign and verify.
///
/// ```swift
/// let user = try NKeyPair(seed: "SUAJ…")
/// let sig = user.signNonceBase64URL(info.nonce)   // CONNECT "sig"
/// ```
///
/// The secret key lives in a private buffer that is wiped with
/// `sodium_memzero` when the last copy of the key pair is released.
/// Curve (`X`) keys are handled by ``XKeyPair``.
public struct NKeyPair: Sendable {
    /// The role of this key.
    public let type: NKeyPrefix

    /// The encoded public key, e.g. `UAK7…` (56 characters).
    public let publicKey: String

    /// The raw 32-byte Ed25519 public key.
    public let publicKeyBytes: [UInt8]

    /// libsodium's 64-byte secret key: the raw seed followed by the public key.
    private let secretKey: SecretBytes

    /// Decodes an encoded seed (`SU…`, `SA…`, `SO…`, `SN…`, `SC…`; 58 characters).
    ///
    /// Surrounding whitespace is ignored.
    ///
    /// - Throws: ``NKeyError`` when the seed is not valid base32, its checksum
    ///   does not match, it is not a seed, its role is not an Ed25519 role, or
    ///   it does not hold exactly 32 bytes.
    public init(seed: String) throws {
        let text = seed.trimmingASCIIWhitespace()
        let (role, raw) = try NKeyCodec.decodeSeed(text)
        guard role.isSigningRole else {
            throw NKeyError.unsupportedKeyType(role, reason: "curve seeds are encryption keys; use XKeyPair(seed:)")
        }
        try self.init(secretSeed: raw, type: role)
    }

    /// Builds a key pair from a raw 32-byte Ed25519 seed.
    ///
    /// - Throws: ``NKeyError/unsupportedKeyType(_:reason:)`` when `type` is not
    ///   an Ed25519 role, ``NKeyError/invalidLength(input:expected:found:)``
    ///   when `rawSeed` is not 32 bytes.
    public init(rawSeed: some Collection<UInt8>, type: NKeyPrefix) throws {
        guard rawSeed.count == NKeyCodec.keyLength else {
            throw NKeyError.invalidLength(input: "raw seed", expected: NKeyCodec.keyLength, found: rawSeed.count)
        }
        try self.init(secretSeed: SecretBytes(copying: rawSeed), type: type)
    }

    private init(secretSeed: SecretBytes, type: NKeyPrefix) throws {
        guard type.isSigningRole else {
            throw NKeyError.unsupportedKeyType(
                type, reason: "only operator, account, user, server and cluster keys are Ed25519 NKeys"
            )
        }
        try Sodium.ensureInitialized()
        var publicKey = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        let secretKey = try SecretBytes(count: Int(crypto_sign_SECRETKEYBYTES)) { secret in
            let status = secretSeed.withUnsafeUInt8Pointer { seed in
                crypto_sign_seed_keypair(
                    &publicKey, secret.baseAddress!.assumingMemoryBound(to: UInt8.self), seed
                )
            }
            guard status == 0 else {
                throw NKeyError.sodiumFailure(operation: "crypto_sign_seed_keypair")
            }
        }
        self.type = type
        self.secretKey = secretKey
        self.publicKeyBytes = publicKey
        self.publicKey = NKeyCodec.encode(prefix: type, raw: publicKey)
    }

    /// Creates a fresh random key pair of the given Ed25519 role.
    ///
    /// - Throws: ``NKeyError/unsupportedKeyType(_:reason:)`` for `.curve`
    ///   (use ``XKeyPair/generate()``), `.seed` and `.privateKey`.
    public static func generate(_ type: NKeyPrefix) throws -> NKeyPair {
        guard type.isSigningRole else {
            let reason = type == .curve
                ? "curve keys are created with XKeyPair.generate()"
                : "only operator, account, user, server and cluster keys can be generated"
            throw NKeyError.unsupportedKeyType(type, reason: reason)
        }
        var raw = try Sodium.randomBytes(NKeyCodec.keyLength)
        defer { secureWipe(&raw) }
        return try NKeyPair(secretSeed: SecretBytes(copying: raw), type: type)
    }

    /// The encoded seed (58 characters, `S` followed by the role character).
    ///
    /// This is the secret; handle it accordingly.
    public var seed: String {
        let raw = secretKey.withUnsafeBytes { SecretBytes(copying: $0.prefix(NKeyCodec.keyLength)) }
        return NKeyCodec.encodeSeed(role: type, raw: raw)
    }

    /// Signs `bytes`, returning the 64-byte Ed25519 signature.
    public func sign(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: Int(crypto_sign_BYTES))
        let status = withContiguousBytes(bytes) { message, count in
            secretKey.withUnsafeUInt8Pointer { secret in
                crypto_sign_detached(&signature, nil, message, UInt64(count), secret)
            }
        }
        precondition(status == 0, "crypto_sign_detached failed")
        return signature
    }

    /// Checks an Ed25519 `signature` over `message` against this key.
    ///
    /// Returns `false` for a wrong signature, including one of the wrong length.
    public func verify(signature: some Collection<UInt8>, message: some Collection<UInt8>) -> Bool {
        Self.verify(rawPublicKey: publicKeyBytes, signature: signature, message: message)
    }

    /// Checks an Ed25519 `signature` over `message` using only an encoded public key.
    ///
    /// - Parameters:
    ///   - publicKey: an encoded operator, account, user, server or cluster key.
    ///   - signature: the 64-byte Ed25519 signature.
    ///   - message: the bytes that were signed.
    /// - Returns: whether the signature is valid.
    /// - Throws: ``NKeyError`` when `publicKey` is malformed (encoding, checksum,
    ///   length) or is not an Ed25519 role.
    public static func verify(
        publicKey: String,
        signature: some Collection<UInt8>,
        message: some Collection<UInt8>
    ) throws -> Bool {
        let decoded = try NKeyCodec.decodePublic(
            publicKey.trimmingASCIIWhitespace(),
            expected: "an operator, account, user, server or cluster public key",
            allowed: { $0.isSigningRole }
        )
        return verify(rawPublicKey: decoded.key, signature: signature, message: message)
    }

    /// Whether `publicKey` is a well-formed Ed25519 public NKey, optionally of a given role.
    public static func isValidPublicKey(_ publicKey: String, type: NKeyPrefix? = nil) -> Bool {
        let decoded = try? NKeyCodec.decodePublic(publicKey, expected: "", allowed: { prefix in
            prefix.isSigningRole && (type == nil || type == prefix)
        })
        return decoded != nil
    }

    /// Signs a server-provided nonce the way NATS CONNECT expects: the Ed25519
    /// signature over the nonce's UTF-8 bytes, base64url-encoded without padding.
    package func signNonceBase64URL(_ nonce: String) -> String {
        Base64URL.encode(sign(Array(nonce.utf8)))
    }

    /// Checks a CONNECT `sig`: the signature over `nonce` by `publicKey`, in base64url
    /// (padded or not) or standard base64, as servers accept it. `false` for anything malformed.
    package static func verifyNonceSignature(publicKey: String, nonce: String, signature: String) -> Bool {
        var text = Substring(signature)
        while text.hasSuffix("=") { text.removeLast() }
        let urlSafe = String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
        guard let bytes = Base64URL.decode(urlSafe) else { return false }
        return (try? verify(publicKey: publicKey, signature: bytes, message: Array(nonce.utf8))) ?? false
    }

    private static func verify(
        rawPublicKey: [UInt8],
        signature: some Collection<UInt8>,
        message: some Collection<UInt8>
    ) -> Bool {
        guard Sodium.isInitialized, signature.count == Int(crypto_sign_BYTES) else { return false }
        let signatureBytes = Array(signature)
        let status = withContiguousBytes(message) { pointer, count in
            crypto_sign_verify_detached(signatureBytes, pointer, UInt64(count), rawPublicKey)
        }
        return status == 0
    }
}
