/// Errors thrown while encoding, decoding, verifying or validating a ``NATSJWT``.
public enum NATSJWTError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The part of a token an error refers to.
    public enum Part: String, Sendable, Equatable {
        /// The token as a whole (e.g. the number of `.`-separated parts).
        case token
        /// The first part, the JOSE header.
        case header
        /// The second part, the claims.
        case payload
        /// The third part, the Ed25519 signature.
        case signature
    }

    /// A part of the token cannot be parsed.
    case malformed(Part, reason: String)
    /// The header's `typ` is not `JWT`.
    case unsupportedType(String)
    /// The header's `alg` is not `ed25519-nkey`.
    case unsupportedAlgorithm(String)
    /// The `iss` claim is not a usable Ed25519 public NKey.
    case invalidIssuer(String, reason: String)
    /// The signature does not verify against the `iss` public key.
    case badSignature(issuer: String)
    /// The token's `exp` (Unix seconds) is before `now`.
    case expired(expiresAt: Int64, now: Int64)
    /// The token's `nbf` (Unix seconds) is after `now`.
    case notYetValid(notBefore: Int64, now: Int64)
    /// Claims cannot be encoded without a `sub`.
    case missingSubject

    /// One line saying what is wrong with the token.
    public var description: String {
        switch self {
        case let .malformed(part, reason):
            "malformed JWT \(part.rawValue): \(reason)"
        case let .unsupportedType(type):
            "unsupported JWT typ \"\(type)\"; expected \"JWT\""
        case let .unsupportedAlgorithm(alg):
            "unsupported JWT alg \"\(alg)\"; expected \"\(NATSJWT.algorithm)\""
        case let .invalidIssuer(issuer, reason):
            "JWT issuer \(NKeyError.summarize(issuer)) is not a valid signing key: \(reason)"
        case let .badSignature(issuer):
            "JWT signature does not verify against issuer \(NKeyError.summarize(issuer))"
        case let .expired(expiresAt, now):
            "JWT expired at \(expiresAt) (Unix seconds); now is \(now)"
        case let .notYetValid(notBefore, now):
            "JWT is not valid before \(notBefore) (Unix seconds); now is \(now)"
        case .missingSubject:
            "JWT claims have no subject (sub)"
        }
    }

    /// Shortens a token part for error messages.
    static func summarize(_ text: some StringProtocol) -> String {
        let count = text.count
        if count <= 24 {
            return "\"\(text)\" (\(count) chars)"
        }
        return "\"\(text.prefix(16))…\(text.suffix(4))\" (\(count) chars)"
    }
}
