import FoundationEssentials
import NATSWire

/// A workload JWT: the signed claims that authorise deploying, or stopping, one workload.
///
/// Both tokens are NATS generic claims (github.com/nats-io/jwt/v2 shape, as Nex 0.2 uses):
/// `sub` is the workload name, `iss` the issuer's public NKey, and a deploy token carries the
/// artifact's SHA-256 in `nats.hash`. Any signing role may issue them; the Nex CLI uses an
/// account key (`A...`).
///
/// ```swift
/// let issuer = try NKeyPair(seed: accountSeed)
/// let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: sha256Hex, issuer: issuer)
/// // on the node:
/// let claims = try WorkloadClaims.verifyDeploy(request.workloadJWT, validIssuers: config.validIssuers)
/// try claims.checkArtifact(sha256Hex: fetchedArtifactHash)
/// // later, to stop it:
/// let stop = try WorkloadClaims.stop(name: "echo", issuer: issuer)
/// try claims.checkStop(try WorkloadClaims.verify(stop.token))
/// ```
///
/// Unlike Nex 0.2, a stop token issued within the same second as the deploy token is accepted:
/// only a replay of the deploy token's `jti` is refused. Because jwt/v2 derives `jti` from the
/// standard claims (`iat` has whole-second resolution), ``stop(name:issuer:expires:issuedAt:)``
/// puts a random nonce in the `name` claim so that every stop token has a fresh `jti`.
public struct WorkloadClaims: Sendable, Equatable {
    /// The longest workload name accepted.
    public static let maxNameLength = 64

    /// The compact JWT, `header.payload.signature`: what travels as `workload_jwt`.
    public let token: String
    /// `sub`: the workload name.
    public let name: String
    /// `iss`: the issuer's public NKey.
    public let issuer: String
    /// `jti`: the token's id.
    public let id: String
    /// `iat`: Unix seconds.
    public let issuedAt: Int64
    /// `exp`: Unix seconds, if the token expires.
    public let expires: Int64?
    /// `nbf`: Unix seconds, if the token is not valid before then.
    public let notBefore: Int64?
    /// `nats.hash`: the artifact's SHA-256, lowercase hex (deploy tokens only).
    public let artifactHash: String?
    /// The raw `nats.hash` claim, to tell a missing claim from one of the wrong JSON type.
    private let hashClaim: JSONValue?

    init(_ jwt: NATSJWT) {
        token = jwt.token
        name = jwt.claims.subject
        issuer = jwt.claims.issuer
        id = jwt.claims.id
        issuedAt = jwt.claims.issuedAt
        expires = jwt.claims.expires
        notBefore = jwt.claims.notBefore
        hashClaim = jwt.claims.nats["hash"]
        artifactHash = hashClaim?.stringValue.map { $0.lowercased() }
    }

    // MARK: Signing

    /// Signs a deploy token: `sub` = `name`, `nats.hash` = `artifactHash`, optional `exp`, and a
    /// nonce in `name` so that each token has its own `jti` (a node accepts a deploy `jti` once,
    /// and jwt/v2 derives `jti` from the claims, whose `iat` has whole-second resolution).
    ///
    /// - Parameters:
    ///   - name: the workload name; 1...64 characters of `[a-zA-Z0-9_-]`.
    ///   - artifactHash: the artifact's SHA-256 as 64 hex digits (stored lowercase).
    ///   - issuer: any Ed25519 NKey (account, user, operator, server or cluster).
    ///   - expires: when the token stops being valid (`exp`); nil for never.
    ///   - issuedAt: the token's `iat`.
    /// - Throws: ``WorkloadClaimsError/invalidName(_:reason:)``,
    ///   ``WorkloadClaimsError/invalidClaim(name:claim:reason:)`` for a malformed hash.
    public static func deploy(
        name: String, artifactHash: String, issuer: NKeyPair, expires: Date? = nil, issuedAt: Date = Date()
    ) throws(WorkloadClaimsError) -> WorkloadClaims {
        try validateName(name)
        let hash = try normalizedHash(artifactHash, name: name)
        let claims = NATSJWTClaims(subject: name, name: "deploy-\(nonce())", expires: expires, nats: ["hash": .string(hash)])
        return try sign(claims, issuer: issuer, issuedAt: issuedAt)
    }

    /// Signs a stop token for the workload `name`: the same `sub`, to be signed by the same
    /// issuer as its deploy token, with a fresh `jti` (see the type's discussion).
    public static func stop(
        name: String, issuer: NKeyPair, expires: Date? = nil, issuedAt: Date = Date()
    ) throws(WorkloadClaimsError) -> WorkloadClaims {
        try validateName(name)
        let claims = NATSJWTClaims(subject: name, name: "stop-\(nonce())", expires: expires)
        return try sign(claims, issuer: issuer, issuedAt: issuedAt)
    }

    /// 128 random bits in hex.
    private static func nonce() -> String {
        (0..<2).map { _ in hex(UInt64.random(in: .min ... .max)) }.joined()
    }

    private static func sign(
        _ claims: NATSJWTClaims, issuer: NKeyPair, issuedAt: Date
    ) throws(WorkloadClaimsError) -> WorkloadClaims {
        do {
            return WorkloadClaims(try NATSJWT.encode(claims, signer: issuer, issuedAt: issuedAt))
        } catch {
            throw .signingFailed(name: claims.subject, reason: "\(error)")
        }
    }

    // MARK: Verifying

    /// Decodes `token` and checks, in order: the signature against `iss`; `iss` against
    /// `validIssuers` (empty = any issuer); the workload name in `sub`; `exp` and `nbf` at `date`.
    public static func verify(
        _ token: String, validIssuers: [String] = [], at date: Date = Date()
    ) throws(WorkloadClaimsError) -> WorkloadClaims {
        let jwt: NATSJWT
        do {
            jwt = try NATSJWT(token: token)
        } catch let error as NATSJWTError {
            throw .invalidToken(error)
        } catch {
            throw .invalidToken(.malformed(.token, reason: "\(error)"))
        }
        let claims = WorkloadClaims(jwt)
        if !validIssuers.isEmpty, !validIssuers.contains(claims.issuer) {
            throw .untrustedIssuer(name: claims.name, issuer: claims.issuer)
        }
        try validateName(claims.name)
        do {
            try jwt.validate(at: date)
        } catch let NATSJWTError.expired(expiresAt, now) {
            throw .expired(name: claims.name, expiresAt: expiresAt, now: now)
        } catch let NATSJWTError.notYetValid(notBefore, now) {
            throw .notYetValid(name: claims.name, notBefore: notBefore, now: now)
        } catch let error as NATSJWTError {
            throw .invalidToken(error)
        } catch {
            throw .invalidToken(.malformed(.payload, reason: "\(error)"))
        }
        return claims
    }

    /// ``verify(_:validIssuers:at:)``, and also requires `nats.hash` to be a SHA-256 hex digest,
    /// unless `allowUnverifiedHash` (a node's `allow_unverified_hash`, for Nex 0.2 clients that
    /// send a placeholder): then any `nats.hash`, or none, is accepted, and ``verifiedHash`` is nil.
    public static func verifyDeploy(
        _ token: String, validIssuers: [String] = [], at date: Date = Date(), allowUnverifiedHash: Bool = false
    ) throws(WorkloadClaimsError) -> WorkloadClaims {
        let claims = try verify(token, validIssuers: validIssuers, at: date)
        if allowUnverifiedHash { return claims }
        guard let hash = claims.artifactHash else {
            switch claims.hashClaim {
            case nil, .null?: throw .missingClaim(name: claims.name, claim: "nats.hash")
            case .some: throw .invalidClaim(name: claims.name, claim: "nats.hash", reason: "must be a string")
            }
        }
        _ = try normalizedHash(hash, name: claims.name)
        return claims
    }

    /// Verifies a stop token (``verify(_:validIssuers:at:)``) and checks it against these deploy
    /// claims (``checkStop(_:)``).
    public func verifyStop(
        _ token: String, validIssuers: [String] = [], at date: Date = Date()
    ) throws(WorkloadClaimsError) -> WorkloadClaims {
        let stop = try Self.verify(token, validIssuers: validIssuers, at: date)
        try checkStop(stop)
        return stop
    }

    /// Checks that `stop` may stop the workload these deploy claims started: it must not replay
    /// this token's `jti`, and its `sub` and `iss` must be this token's. Sharing the `iat` second
    /// is fine (Nex 0.2 refused that; we do not, on purpose).
    public func checkStop(_ stop: WorkloadClaims) throws(WorkloadClaimsError) {
        if !id.isEmpty, stop.id == id {
            throw .replayedToken(name: name, jti: id)
        }
        if stop.name != name {
            throw .stopClaimMismatch(claim: "sub", deployed: name, stop: stop.name)
        }
        if stop.issuer != issuer {
            throw .stopClaimMismatch(claim: "iss", deployed: issuer, stop: stop.issuer)
        }
    }

    /// The `nats.hash` claim when it is a SHA-256 digest (64 hex digits), lowercased; nil when
    /// it is missing or anything else (a Nex 0.2 placeholder).
    public var verifiedHash: String? {
        guard let artifactHash, let hash = try? Self.normalizedHash(artifactHash, name: name) else { return nil }
        return hash
    }

    /// Checks the `nats.hash` claim against the SHA-256 (hex, any case) of the fetched artifact.
    public func checkArtifact(sha256Hex actual: String) throws(WorkloadClaimsError) {
        guard let claimed = artifactHash else {
            throw .missingClaim(name: name, claim: "nats.hash")
        }
        guard claimed == actual.lowercased() else {
            throw .artifactHashMismatch(name: name, claimed: claimed, actual: actual.lowercased())
        }
    }

    /// Checks a workload name: 1...``maxNameLength`` characters, each of `[a-zA-Z0-9_-]`.
    public static func validateName(_ name: String) throws(WorkloadClaimsError) {
        if name.isEmpty {
            throw .invalidName(name, reason: "it is empty")
        }
        if name.utf8.count > maxNameLength {
            throw .invalidName(name, reason: "it is \(name.utf8.count) bytes long; the limit is \(maxNameLength)")
        }
        if let bad = name.unicodeScalars.first(where: { !isNameCharacter($0) }) {
            let shown = bad.isASCII && bad.value >= 0x20 && bad.value < 0x7F
                ? "'\(bad)'" : "U+" + String(bad.value, radix: 16, uppercase: true)
            throw .invalidName(name, reason: "character \(shown) is not allowed; use only a-z, A-Z, 0-9, '_' and '-'")
        }
    }

    /// Whether `text` is a workload name that ``validateName(_:)`` accepts.
    public static func isValidName(_ text: String) -> Bool {
        (try? validateName(text)) != nil
    }

    private static func isNameCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "_", "-": true
        default: false
        }
    }

    private static func normalizedHash(_ hash: String, name: String) throws(WorkloadClaimsError) -> String {
        guard hash.utf8.count == 64, hash.utf8.allSatisfy({ isHexDigit($0) }) else {
            throw .invalidClaim(
                name: name, claim: "nats.hash",
                reason: "must be a SHA-256 digest as 64 hex digits, found \(WorkloadClaimsError.quote(hash))"
            )
        }
        return hash.lowercased()
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
             UInt8(ascii: "A")...UInt8(ascii: "F"): true
        default: false
        }
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
