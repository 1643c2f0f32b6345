import Foundation
import Testing
@testable import NATSWire

@Suite("NATS JWT")
struct JWTTests {
    static let vectors = KeyFixtures.jwt
    static var validAt: Date { Date(timeIntervalSince1970: TimeInterval(vectors.valid_at_unix)) }

    static func signer() throws -> NKeyPair { try NKeyPair(seed: vectors.signer_seed) }

    /// Splits a token and re-joins it after `edit`.
    static func edit(_ token: String, _ edit: (inout [String]) -> Void) -> String {
        var parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        edit(&parts)
        return parts.joined(separator: ".")
    }

    static func b64(_ text: String) -> String { Base64URL.encode(Array(text.utf8)) }

    @Test func sha512_256KnownAnswers() {
        for vector in Self.vectors.sha512_256 {
            #expect(Digest.sha512_256(Array(vector.input.utf8)).hex == vector.digest_hex)
        }
    }

    @Test func decodesAndVerifiesPythonSignedToken() throws {
        let vector = Self.vectors.workload
        let jwt = try NATSJWT.decode(vector.token, validAt: Self.validAt)
        let claims = jwt.claims
        #expect(claims.id == vector.claims["jti"]?.stringValue)
        #expect(claims.issuedAt == 1_700_000_000)
        #expect(claims.issuer == Self.vectors.signer_public_key)
        #expect(claims.subject == Self.vectors.subject)
        #expect(claims.name == "echo <service> & co")
        #expect(claims.expires == 4_102_444_800)
        #expect(claims.notBefore == nil)
        #expect(claims.audience == nil)
        #expect(claims.nats == vector.claims["nats"]?.objectValue)
        #expect(claims.nats["hash"]?.stringValue == vector.claims["nats"]?["hash"]?.stringValue)
        #expect(claims.nats["version"]?.intValue == 2)
        #expect(claims.nats["nested"]?["beta"]?.arrayValue == [true, false, nil, 2.5])
        #expect(claims.expirationDate == Date(timeIntervalSince1970: 4_102_444_800))
        #expect(jwt.signature.count == 64)
        #expect(jwt.token == vector.token)
    }

    @Test func jtiMatchesGoDerivation() throws {
        for vector in [Self.vectors.workload, Self.vectors.minimal, Self.vectors.expired] {
            let expected = Base32.encode(Digest.sha512_256(Array(vector.jti_hash_input.utf8)))
            #expect(expected == vector.claims["jti"]?.stringValue)
            #expect(try NATSJWT(token: vector.token).claims.id == expected)
        }
    }

    /// Encoding the same claims at the same instant reproduces the Python
    /// (Go-format) token byte for byte.
    @Test func encodeReproducesPythonTokens() throws {
        for vector in [Self.vectors.workload, Self.vectors.minimal, Self.vectors.expired, Self.vectors.not_yet_valid] {
            let decoded = try NATSJWT(token: vector.token).claims
            var claims = NATSJWTClaims(subject: decoded.subject, name: decoded.name, nats: decoded.nats)
            claims.expires = decoded.expires
            claims.notBefore = decoded.notBefore
            claims.nats["version"] = nil
            let encoded = try NATSJWT.encode(
                claims, signer: Self.signer(),
                issuedAt: Date(timeIntervalSince1970: TimeInterval(decoded.issuedAt) + 0.9)
            )
            #expect(encoded.claims.payloadJSON() == vector.payload_json)
            #expect(encoded.token == vector.token)
            #expect(encoded.claims == decoded)
        }
    }

    @Test func encodeDecodeRoundTripWithCodablePayload() throws {
        struct Workload: Codable, Equatable {
            let hash: String
            let replicas: Int
        }
        let signer = try NKeyPair.generate(.account)
        let subject = try NKeyPair.generate(.user).publicKey
        let claims = try NATSJWTClaims(
            subject: subject, name: "w", audience: "nex",
            expires: Date(timeIntervalSince1970: 2_000_000_000),
            notBefore: Date(timeIntervalSince1970: 1_000_000_000),
            nats: JSONValue(encoding: Workload(hash: "abc", replicas: 3)).objectValue ?? [:]
        )
        let jwt = try NATSJWT.encode(claims, signer: signer, issuedAt: Date(timeIntervalSince1970: 1_500_000_000))
        let decoded = try NATSJWT.decode(jwt.token, validAt: Date(timeIntervalSince1970: 1_600_000_000))
        #expect(decoded.claims == jwt.claims)
        #expect(decoded.claims.issuer == signer.publicKey)
        #expect(decoded.claims.audience == "nex")
        #expect(decoded.claims.notBefore == 1_000_000_000)
        #expect(try decoded.claims.decodeNATS(Workload.self) == Workload(hash: "abc", replicas: 3))
        #expect(decoded.claims.id.count == 52)
    }

    @Test func expiredAndNotYetValid() throws {
        let expired = try NATSJWT(token: Self.vectors.expired.token)
        #expect(throws: NATSJWTError.expired(expiresAt: 1_000_000_600, now: Self.vectors.valid_at_unix)) {
            try expired.validate(at: Self.validAt)
        }
        #expect(throws: NATSJWTError.self) { try NATSJWT.decode(Self.vectors.expired.token, validAt: Self.validAt) }
        // Valid through the expiry second itself, like Go.
        try expired.validate(at: Date(timeIntervalSince1970: 1_000_000_600.5))
        #expect(throws: NATSJWTError.self) { try expired.validate(at: Date(timeIntervalSince1970: 1_000_000_601)) }

        let future = try NATSJWT(token: Self.vectors.not_yet_valid.token)
        #expect(throws: NATSJWTError.notYetValid(notBefore: 4_000_000_000, now: Self.vectors.valid_at_unix)) {
            try future.validate(at: Self.validAt)
        }
        try future.validate(at: Date(timeIntervalSince1970: 4_000_000_000))
    }

    @Test func badSignatures() throws {
        let token = Self.vectors.workload.token
        let issuer = Self.vectors.signer_public_key
        // Flip a character in the middle of the signature.
        let flipped = Self.edit(token) { parts in
            var sig = Array(parts[2])
            sig[10] = sig[10] == "A" ? "B" : "A"
            parts[2] = String(sig)
        }
        #expect(throws: NATSJWTError.badSignature(issuer: issuer)) { try NATSJWT(token: flipped) }

        // Signed by another key while claiming the original issuer.
        let other = try NKeyPair.generate(.account)
        let forged = Self.edit(token) { parts in
            parts[2] = Base64URL.encode(other.sign(Array("\(parts[0]).\(parts[1])".utf8)))
        }
        #expect(throws: NATSJWTError.badSignature(issuer: issuer)) { try NATSJWT(token: forged) }

        // Payload changed after signing.
        let tampered = Self.edit(token) { parts in
            parts[1] = Self.b64(Self.vectors.workload.payload_json.replacingOccurrences(of: "echo", with: "ech0"))
        }
        #expect(throws: NATSJWTError.badSignature(issuer: issuer)) { try NATSJWT(token: tampered) }

        // Truncated signature.
        let short = Self.edit(token) { parts in parts[2] = String(parts[2].prefix(40)) }
        #expect {
            try NATSJWT(token: short)
        } throws: { error in
            if case .malformed(.signature, _)? = error as? NATSJWTError { true } else { false }
        }
    }

    @Test func malformedTokens() throws {
        let token = Self.vectors.minimal.token
        let parts = token.split(separator: ".").map(String.init)
        func expectMalformed(_ text: String, _ part: NATSJWTError.Part, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(sourceLocation: sourceLocation) {
                try NATSJWT(token: text)
            } throws: { error in
                if case .malformed(part, _)? = error as? NATSJWTError { true } else { false }
            }
        }
        expectMalformed("\(parts[0]).\(parts[1])", .token)
        expectMalformed("\(token).extra", .token)
        expectMalformed("", .token)
        expectMalformed("!!!.\(parts[1]).\(parts[2])", .header)
        expectMalformed("\(parts[0]).\(parts[1])=.\(parts[2])", .payload)
        expectMalformed("\(parts[0]).not*base64.\(parts[2])", .payload)
        expectMalformed("\(parts[0]).\(Self.b64("hello")).\(parts[2])", .payload)
        expectMalformed("\(parts[0]).\(Self.b64("[1,2]")).\(parts[2])", .payload)
        expectMalformed("\(parts[0]).\(Self.b64(#"{"iat":"soon"}"#)).\(parts[2])", .payload)
        expectMalformed("\(parts[0]).\(Self.b64(#"{"nats":[]}"#)).\(parts[2])", .payload)
        expectMalformed("\(parts[0]).\(parts[1]).%%%", .signature)

        #expect(throws: NATSJWTError.unsupportedAlgorithm("HS256")) {
            try NATSJWT(token: "\(Self.b64(#"{"typ":"JWT","alg":"HS256"}"#)).\(parts[1]).\(parts[2])")
        }
        #expect(throws: NATSJWTError.unsupportedAlgorithm("ed25519")) {
            try NATSJWT(token: "\(Self.b64(#"{"typ":"JWT","alg":"ed25519"}"#)).\(parts[1]).\(parts[2])")
        }
        #expect(throws: NATSJWTError.unsupportedType("JWS")) {
            try NATSJWT(token: "\(Self.b64(#"{"typ":"JWS","alg":"ed25519-nkey"}"#)).\(parts[1]).\(parts[2])")
        }
    }

    @Test func invalidIssuerAndMissingSubject() throws {
        let token = Self.vectors.minimal.token
        let noIssuer = Self.edit(token) { parts in parts[1] = Self.b64(#"{"sub":"x","iss":"not-a-key"}"#) }
        #expect {
            try NATSJWT(token: noIssuer)
        } throws: { error in
            if case .invalidIssuer("not-a-key", _)? = error as? NATSJWTError { true } else { false }
        }
        #expect(throws: NATSJWTError.missingSubject) {
            try NATSJWT.encode(NATSJWTClaims(subject: ""), signer: Self.signer())
        }
    }

    @Test func goJSONEscaping() {
        #expect(GoJSON.serialize(.string("<a & b>\u{2028}\"\\\n\u{01}é")) == #""\u003ca \u0026 b\u003e\u2028\"\\\n\u0001é""#)
        #expect(GoJSON.serialize(["b": 1, "a": [2.0, 2.5, nil, true]]) == #"{"a":[2,2.5,null,true],"b":1}"#)
    }
}
