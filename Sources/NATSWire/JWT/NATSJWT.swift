import FoundationEssentials

/// A NATS JWT (github.com/nats-io/jwt/v2 format) signed with an Ed25519 NKey.
///
/// The header is `{"typ":"JWT","alg":"ed25519-nkey"}`, the signature is the
/// issuer's Ed25519 signature over `header.payload`, and all three parts are
/// base64url without padding.
///
/// ```swift
/// let jwt = try NATSJWT.encode(
///     NATSJWTClaims(subject: workloadKey, nats: ["hash": .string(sha256Hex)]),
///     signer: accountKey)
/// let checked = try NATSJWT.decode(jwt.token, validAt: Date())
/// ```
public struct NATSJWT: Sendable {
    /// The only accepted `alg`.
    public static let algorithm = "ed25519-nkey"
    /// The `typ` written into headers.
    public static let tokenType = "JWT"

    private static let encodedHeader = Base64URL.encode(
        Array(#"{"typ":"JWT","alg":"ed25519-nkey"}"#.utf8)
    )

    /// The compact token, `header.payload.signature`.
    public let token: String
    /// The decoded claims.
    public let claims: NATSJWTClaims
    /// The raw 64-byte signature.
    public let signature: [UInt8]

    /// Decodes `token` and verifies its signature against its `iss` claim.
    ///
    /// Expiry is not checked here; call ``validate(at:)`` or use
    /// ``decode(_:validAt:)``. Surrounding whitespace is ignored.
    ///
    /// - Throws: ``NATSJWTError``: `malformed` naming the part that is wrong,
    ///   `unsupportedType`, `unsupportedAlgorithm`, `invalidIssuer` or `badSignature`.
    public init(token: String) throws {
        let token = token.trimmingASCIIWhitespace()
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw NATSJWTError.malformed(
                .token, reason: "expected 3 dot-separated parts, found \(parts.count) in \(NATSJWTError.summarize(token))"
            )
        }
        try Self.checkHeader(parts[0])

        guard let payloadBytes = Base64URL.decode(parts[1]) else {
            throw NATSJWTError.malformed(.payload, reason: "not base64url: \(NATSJWTError.summarize(parts[1]))")
        }
        let payload = try Self.parseObject(payloadBytes, part: .payload)
        let claims = try NATSJWTClaims(payload: payload)

        guard let signature = Base64URL.decode(parts[2]) else {
            throw NATSJWTError.malformed(.signature, reason: "not base64url: \(NATSJWTError.summarize(parts[2]))")
        }
        guard signature.count == 64 else {
            throw NATSJWTError.malformed(.signature, reason: "expected 64 bytes, found \(signature.count)")
        }

        let signedLength = parts[0].utf8.count + 1 + parts[1].utf8.count
        let signed = Array(token.utf8.prefix(signedLength))
        let valid: Bool
        do {
            valid = try NKeyPair.verify(publicKey: claims.issuer, signature: signature, message: signed)
        } catch let error as NKeyError {
            throw NATSJWTError.invalidIssuer(claims.issuer, reason: error.description)
        }
        guard valid else {
            throw NATSJWTError.badSignature(issuer: claims.issuer)
        }
        self.token = token
        self.claims = claims
        self.signature = signature
    }

    /// Decodes `token`, verifies its signature and checks `exp`/`nbf` at `date`.
    public static func decode(_ token: String, validAt date: Date) throws -> NATSJWT {
        let jwt = try NATSJWT(token: token)
        try jwt.validate(at: date)
        return jwt
    }

    /// Checks the validity window: fails if `exp` is set and `date` is after it,
    /// or if `nbf` is set and `date` is before it (whole Unix seconds, like Go).
    ///
    /// - Throws: ``NATSJWTError/expired(expiresAt:now:)`` or
    ///   ``NATSJWTError/notYetValid(notBefore:now:)``.
    public func validate(at date: Date = Date()) throws {
        let now = NATSJWTClaims.unixSeconds(date)
        if let expires = claims.expires, expires > 0, now > expires {
            throw NATSJWTError.expired(expiresAt: expires, now: now)
        }
        if let notBefore = claims.notBefore, notBefore > 0, notBefore > now {
            throw NATSJWTError.notYetValid(notBefore: notBefore, now: now)
        }
    }

    /// Signs `claims` with `signer`, like Go's `GenericClaims.Encode`.
    ///
    /// Sets `iss` to the signer's public key, `iat` to `issuedAt`, `nats.version`
    /// to 2, and `jti` to the base32 (no padding) SHA-512/256 of the standard
    /// claims serialised without `jti`, exactly as github.com/nats-io/jwt/v2 does.
    ///
    /// - Throws: ``NATSJWTError/missingSubject`` when `claims.subject` is empty.
    public static func encode(
        _ claims: NATSJWTClaims,
        signer: NKeyPair,
        issuedAt: Date = Date()
    ) throws -> NATSJWT {
        guard !claims.subject.isEmpty else { throw NATSJWTError.missingSubject }
        var claims = claims
        claims.issuer = signer.publicKey
        claims.issuedAt = NATSJWTClaims.unixSeconds(issuedAt)
        claims.id = ""
        let hashInput = GoJSON.serialize(orderedMembers: claims.claimsDataMembers())
        claims.id = Base32.encode(Digest.sha512_256(Array(hashInput.utf8)))
        claims.nats["version"] = .int(2)

        let signingInput = encodedHeader + "." + Base64URL.encode(Array(claims.payloadJSON().utf8))
        let signature = signer.sign(Array(signingInput.utf8))
        return NATSJWT(token: signingInput + "." + Base64URL.encode(signature), claims: claims, signature: signature)
    }

    private init(token: String, claims: NATSJWTClaims, signature: [UInt8]) {
        self.token = token
        self.claims = claims
        self.signature = signature
    }

    private static func checkHeader(_ part: Substring) throws {
        guard let bytes = Base64URL.decode(part) else {
            throw NATSJWTError.malformed(.header, reason: "not base64url: \(NATSJWTError.summarize(part))")
        }
        let header = try parseObject(bytes, part: .header)
        let type = header["typ"]?.stringValue ?? ""
        guard type.uppercased() == tokenType else {
            throw NATSJWTError.unsupportedType(type)
        }
        let alg = header["alg"]?.stringValue ?? ""
        guard alg.lowercased() == algorithm else {
            throw NATSJWTError.unsupportedAlgorithm(alg)
        }
    }

    private static func parseObject(_ bytes: [UInt8], part: NATSJWTError.Part) throws -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            let text = String(decoding: bytes.prefix(40), as: UTF8.self)
            throw NATSJWTError.malformed(part, reason: "not JSON: \(NATSJWTError.summarize(text))")
        }
        guard case let .object(members) = value else {
            throw NATSJWTError.malformed(part, reason: "not a JSON object")
        }
        return members
    }
}
