/// The role byte that starts every encoded NKey, XKey and seed.
///
/// Each raw value is the byte placed in front of the key material before the
/// base32 encoding, chosen so that the first base32 character names the role
/// (for example `U` for users and `S` for seeds).
public enum NKeyPrefix: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Seeds (`S…`); the second character of a seed names the key's role.
    case seed = 144 // 18 << 3
    /// Encoded private keys (`P…`).
    case privateKey = 120 // 15 << 3
    /// Server identities (`N…`).
    case server = 104 // 13 << 3
    /// Cluster identities (`C…`).
    case cluster = 16 // 2 << 3
    /// Operators (`O…`).
    case `operator` = 112 // 14 << 3
    /// Accounts (`A…`).
    case account = 0
    /// Users (`U…`).
    case user = 160 // 20 << 3
    /// Curve25519 encryption keys (`X…`), used by ``XKeyPair``.
    case curve = 184 // 23 << 3

    /// The base32 character this prefix produces at the start of an encoded key.
    public var character: Character {
        switch self {
        case .seed: "S"
        case .privateKey: "P"
        case .server: "N"
        case .cluster: "C"
        case .operator: "O"
        case .account: "A"
        case .user: "U"
        case .curve: "X"
        }
    }

    /// Looks up the prefix whose encoded keys start with `character`.
    public init?(character: Character) {
        guard let match = Self.allCases.first(where: { $0.character == character }) else {
            return nil
        }
        self = match
    }

    /// Whether keys of this role are Ed25519 signing identities (operator,
    /// account, user, server, cluster).
    public var isSigningRole: Bool {
        switch self {
        case .operator, .account, .user, .server, .cluster: true
        case .seed, .privateKey, .curve: false
        }
    }

    /// Whether a seed may carry this role (any signing role, or curve).
    var isSeedRole: Bool { isSigningRole || self == .curve }

    /// A readable name, e.g. `user (U)`.
    public var description: String {
        let name = switch self {
        case .seed: "seed"
        case .privateKey: "private"
        case .server: "server"
        case .cluster: "cluster"
        case .operator: "operator"
        case .account: "account"
        case .user: "user"
        case .curve: "curve"
        }
        return "\(name) (\(character))"
    }
}
