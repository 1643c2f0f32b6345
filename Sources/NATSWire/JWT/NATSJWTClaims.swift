import FoundationEssentials

/// The claims of a NATS JWT in the generic form of github.com/nats-io/jwt/v2:
/// the standard claims plus a free-form `nats` object.
///
/// Times are Unix seconds, as on the wire. Empty strings and zero times are
/// treated as absent, matching Go's `omitempty`.
public struct NATSJWTClaims: Sendable, Hashable {
    /// `jti`: the token's unique ID; set by ``NATSJWT/encode(_:signer:issuedAt:)``.
    public var id: String
    /// `iat`: when the token was issued; set by ``NATSJWT/encode(_:signer:issuedAt:)``.
    public var issuedAt: Int64
    /// `iss`: the public key of the signer; set by ``NATSJWT/encode(_:signer:issuedAt:)``.
    public var issuer: String
    /// `sub`: what the token is about (usually a public NKey).
    public var subject: String
    /// `aud`: the intended audience.
    public var audience: String?
    /// `exp`: the end of validity.
    public var expires: Int64?
    /// `nbf`: the start of validity.
    public var notBefore: Int64?
    /// `name`: a human-readable name.
    public var name: String?
    /// `nats`: the NATS-specific claims (for Nex workload tokens e.g. `hash`).
    public var nats: [String: JSONValue]

    /// Creates claims to be signed with ``NATSJWT/encode(_:signer:issuedAt:)``.
    public init(
        subject: String,
        name: String? = nil,
        audience: String? = nil,
        expires: Date? = nil,
        notBefore: Date? = nil,
        nats: [String: JSONValue] = [:]
    ) {
        self.id = ""
        self.issuedAt = 0
        self.issuer = ""
        self.subject = subject
        self.name = name
        self.audience = audience
        self.expires = expires.map(Self.unixSeconds)
        self.notBefore = notBefore.map(Self.unixSeconds)
        self.nats = nats
    }

    /// ``issuedAt`` as a `Date`.
    public var issuedAtDate: Date { Date(timeIntervalSince1970: TimeInterval(issuedAt)) }
    /// ``expires`` as a `Date`.
    public var expirationDate: Date? { expires.map { Date(timeIntervalSince1970: TimeInterval($0)) } }
    /// ``notBefore`` as a `Date`.
    public var notBeforeDate: Date? { notBefore.map { Date(timeIntervalSince1970: TimeInterval($0)) } }

    /// Decodes the `nats` object into a `Decodable` type.
    public func decodeNATS<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONValue.object(nats).decode(type)
    }

    /// Whole Unix seconds, rounded down.
    static func unixSeconds(_ date: Date) -> Int64 {
        Int64(date.timeIntervalSince1970.rounded(.down))
    }

    /// The standard claims in Go `ClaimsData` field order, empties omitted.
    func claimsDataMembers() -> [GoJSON.Member] {
        var members: [GoJSON.Member] = []
        func add(_ key: String, _ value: String?) {
            if let value, !value.isEmpty { members.append((key, .string(value))) }
        }
        func add(_ key: String, _ value: Int64?) {
            if let value, value != 0 { members.append((key, .int(value))) }
        }
        add("aud", audience)
        add("exp", expires)
        add("jti", id)
        add("iat", issuedAt)
        add("iss", issuer)
        add("name", name)
        add("nbf", notBefore)
        add("sub", subject)
        return members
    }

    /// The payload JSON: standard claims in Go order, then `nats` if non-empty.
    func payloadJSON() -> String {
        var members = claimsDataMembers()
        if !nats.isEmpty {
            members.append(("nats", .object(nats)))
        }
        return GoJSON.serialize(orderedMembers: members)
    }

    /// Reads claims from a decoded payload object.
    init(payload: [String: JSONValue]) throws {
        func string(_ key: String) throws -> String? {
            switch payload[key] {
            case nil, .null: return nil
            case let .string(value)?: return value.isEmpty ? nil : value
            case let other?: throw NATSJWTError.malformed(.payload, reason: "\"\(key)\" is not a string: \(GoJSON.serialize(other).prefix(40))")
            }
        }
        func integer(_ key: String) throws -> Int64? {
            switch payload[key] {
            case nil, .null: return nil
            case let value?:
                guard let number = value.intValue else {
                    throw NATSJWTError.malformed(.payload, reason: "\"\(key)\" is not an integer: \(GoJSON.serialize(value).prefix(40))")
                }
                return number == 0 ? nil : number
            }
        }
        self.id = try string("jti") ?? ""
        self.issuedAt = try integer("iat") ?? 0
        self.issuer = try string("iss") ?? ""
        self.subject = try string("sub") ?? ""
        self.audience = try string("aud")
        self.expires = try integer("exp")
        self.notBefore = try integer("nbf")
        self.name = try string("name")
        switch payload["nats"] {
        case nil, .null: self.nats = [:]
        case let .object(members)?: self.nats = members
        case let other?:
            throw NATSJWTError.malformed(.payload, reason: "\"nats\" is not an object: \(GoJSON.serialize(other).prefix(40))")
        }
    }
}
