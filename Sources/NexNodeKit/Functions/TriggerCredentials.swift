import FoundationEssentials
import NATSWire

/// Signs the user JWTs with which functions' agents serve their own triggers
/// (`direct_triggers`), with an account's key or one of its signing keys.
///
/// A JWT lets its holder do three things and no more, until it expires, from the node's own
/// address and over a plain client connection: subscribe to the function's trigger subjects
/// in the function's queue group, publish one reply to each message it received, and hold as
/// many subscriptions as there are subjects. No plain publish, no other subject, no
/// subscription outside the queue group.
///
/// Subjects with a `*` token get none: the server matches a subscription's own wildcards
/// against the permission's, so `orders.*` would let its holder subscribe to `orders.>`.
/// A trailing `>` is safe (it matches only subjects below it).
public struct TriggerCredentials: Sendable {
    private let signer: NKeyPair
    /// The account's public key when ``signer`` is one of its signing keys (`issuer_account`).
    public let account: String?
    /// The account the JWTs log in to.
    public var issuingAccount: String { account ?? signer.publicKey }
    /// How long each JWT is valid.
    public let lifetime: Duration
    /// How long a reply permission lasts after the message arrived (`resp.ttl`): the longest a
    /// function may run, with room to spare.
    public let replyWindow: Duration

    public init(signer: NKeyPair, account: String?, lifetime: Duration, replyWindow: Duration) throws(DirectTriggerSetupError) {
        guard signer.type == .account else {
            throw DirectTriggerSetupError("the signing key must be an account key or an account signing key (a seed starting SA)")
        }
        if let account, !(account.hasPrefix("A") && NKeyPair.isValidPublicKey(account)) {
            throw DirectTriggerSetupError("'\(account)' is not an account public key")
        }
        self.signer = signer
        self.account = account == signer.publicKey ? nil : account
        self.lifetime = lifetime
        self.replyWindow = replyWindow
    }

    /// Reads the signing key from `configuration`'s seed file.
    public init(_ configuration: NodeConfiguration.DirectTriggers, replyWindow: Duration) throws(DirectTriggerSetupError) {
        let seed: String
        do {
            seed = String(try String(contentsOfFile: configuration.signingKeyFile, encoding: .utf8)
                .filter { !$0.isWhitespace })
        } catch {
            throw DirectTriggerSetupError("direct_triggers.signing_key_file \(configuration.signingKeyFile) cannot be read: \(error)")
        }
        let signer: NKeyPair
        do {
            signer = try NKeyPair(seed: seed)
        } catch {
            throw DirectTriggerSetupError("direct_triggers.signing_key_file \(configuration.signingKeyFile) holds no nkey seed: \(error)")
        }
        try self.init(signer: signer, account: configuration.account,
                      lifetime: .milliseconds(Int64(configuration.lifetimeSeconds * 1000)), replyWindow: replyWindow)
    }

    /// Whether a JWT can be narrow enough for `subjects`: none has a `*` token.
    public static func canServe(_ subjects: [String]) -> Bool {
        subjects.allSatisfy { !$0.split(separator: ".").contains("*") }
    }

    /// A JWT for `user` (the agent's trigger key): `subjects` in `queue` only, replies only,
    /// connecting from `source` (the node's address on the socket it hands over) only.
    public func jwt(for user: String, subjects: [String], queue: String, name: String, source: String? = nil,
                    now: Date = Date()) throws -> NATSJWT {
        guard user.hasPrefix("U"), NKeyPair.isValidPublicKey(user) else {
            throw DirectTriggerSetupError("'\(user)' is not a user public key")
        }
        guard Self.canServe(subjects) else {
            throw DirectTriggerSetupError("a subject with a '*' token cannot be granted narrowly: \(subjects)")
        }
        var nats: [String: JSONValue] = [
            "type": "user", "version": 2,
            "pub": ["deny": [">"]],
            "sub": ["allow": .array(subjects.map { .string("\($0) \(queue)") })],
            "resp": ["max": 1, "ttl": .int(replyWindow.nanoseconds)],
            "subs": .int(Int64(subjects.count)), "data": -1, "payload": -1,
            "allowed_connection_types": ["STANDARD"],
        ]
        if let source { nats["src"] = .array([.string(source.contains(":") ? "\(source)/128" : "\(source)/32")]) }
        if let account { nats["issuer_account"] = .string(account) }
        let expires = now.addingTimeInterval(Double(lifetime.components.seconds)
            + Double(lifetime.components.attoseconds) / 1e18)
        return try NATSJWT.encode(
            NATSJWTClaims(subject: user, name: name, expires: expires, nats: nats),
            signer: signer, issuedAt: now)
    }
}

/// Why a function's agent could not be set up to serve its own triggers (the node then
/// serves them).
public struct DirectTriggerSetupError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
