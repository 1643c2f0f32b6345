import NATSWire

/// Why a workload JWT could not be signed, or was refused.
///
/// Every case names what failed: the workload (the `sub` claim) when it is known, the issuer,
/// or the claim involved. Tokens themselves are never quoted in full.
public enum WorkloadClaimsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The token could not be decoded, or its signature does not verify against its `iss`.
    case invalidToken(NATSJWTError)
    /// The `iss` claim is not one of the node's valid issuers.
    case untrustedIssuer(name: String, issuer: String)
    /// The workload name (`sub` claim) is empty, too long, or has characters outside `[a-zA-Z0-9_-]`.
    case invalidName(String, reason: String)
    /// The `exp` claim is in the past.
    case expired(name: String, expiresAt: Int64, now: Int64)
    /// The `nbf` claim is in the future.
    case notYetValid(name: String, notBefore: Int64, now: Int64)
    /// A claim the token must carry is absent (e.g. `nats.hash` of a deploy JWT).
    case missingClaim(name: String, claim: String)
    /// A claim is present but not acceptable (e.g. `nats.hash` is not SHA-256 hex).
    case invalidClaim(name: String, claim: String, reason: String)
    /// The artifact's SHA-256 is not the one the deploy JWT's `nats.hash` claims.
    case artifactHashMismatch(name: String, claimed: String, actual: String)
    /// A stop JWT carries the deploy JWT's `jti`: it is the deploy token replayed.
    case replayedToken(name: String, jti: String)
    /// A stop JWT's claim (`sub` or `iss`) differs from the deploy JWT's.
    case stopClaimMismatch(claim: String, deployed: String, stop: String)
    /// The claims could not be signed.
    case signingFailed(name: String, reason: String)

    /// One line naming the workload, the issuer or the claim involved.
    public var description: String {
        switch self {
        case let .invalidToken(error):
            "invalid workload JWT: \(error)"
        case let .untrustedIssuer(name, issuer):
            "workload JWT for '\(name)': issuer (iss) \(NKeyError.summarize(issuer)) is not a valid issuer on this node"
        case let .invalidName(name, reason):
            "invalid workload name (sub) \(Self.quote(name)): \(reason)"
        case let .expired(name, expiresAt, now):
            "workload JWT for '\(name)' expired: exp \(expiresAt) is before now (\(now), Unix seconds)"
        case let .notYetValid(name, notBefore, now):
            "workload JWT for '\(name)' is not valid yet: nbf \(notBefore) is after now (\(now), Unix seconds)"
        case let .missingClaim(name, claim):
            "workload JWT for '\(name)' has no '\(claim)' claim"
        case let .invalidClaim(name, claim, reason):
            "workload JWT for '\(name)': claim '\(claim)' \(reason)"
        case let .artifactHashMismatch(name, claimed, actual):
            "artifact of workload '\(name)' has SHA-256 \(actual), but the JWT's nats.hash claims \(claimed)"
        case let .replayedToken(name, jti):
            "stop JWT for '\(name)' replays the deploy JWT (same jti \(jti))"
        case let .stopClaimMismatch(claim, deployed, stop):
            "stop JWT claim '\(claim)' is \(Self.quote(stop)), but the workload was deployed with \(Self.quote(deployed))"
        case let .signingFailed(name, reason):
            "cannot sign the workload JWT for '\(name)': \(reason)"
        }
    }

    /// Quotes a value from a request, cut short so that hostile input cannot flood a log.
    static func quote(_ text: String) -> String {
        text.count <= 72 ? "'\(text)'" : "'\(text.prefix(64))…' (\(text.count) chars)"
    }
}
