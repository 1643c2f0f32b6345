/// Errors thrown while reading or parsing a NATS `.creds` file.
///
/// `source` is the file path, or `"<text>"` when parsing a string.
public enum NATSCredentialsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be read.
    case unreadable(source: String, reason: String)
    /// No decorated JWT block (`-----BEGIN NATS USER JWT-----` … `------END…------`) was found.
    case missingJWT(source: String)
    /// No NKey seed was found, neither as a second decorated block nor as a bare `SU…`/`SA…`/`SO…` line.
    case missingSeed(source: String)
    /// A seed was found but is not a valid Ed25519 NKey seed.
    case invalidSeed(source: String, reason: String)

    /// One line naming the file and what is wrong with it.
    public var description: String {
        switch self {
        case let .unreadable(source, reason):
            "cannot read credentials file \(source): \(reason)"
        case let .missingJWT(source):
            "credentials \(source) contain no decorated JWT block (-----BEGIN NATS USER JWT----- … ------END NATS USER JWT------)"
        case let .missingSeed(source):
            "credentials \(source) contain no NKey seed block (-----BEGIN USER NKEY SEED----- … ------END USER NKEY SEED------)"
        case let .invalidSeed(source, reason):
            "credentials \(source) contain an invalid NKey seed: \(reason)"
        }
    }
}
