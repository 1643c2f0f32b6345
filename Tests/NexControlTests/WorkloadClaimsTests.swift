import Foundation
import NATSWire
import Testing
@testable import NexControl

@Suite struct WorkloadClaimsTests {
    let issuer: NKeyPair
    let hash = "0f8f8cbf3bd0a3c4e6f1a1c2e1b1a7d4c3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8"
    let now = Date(timeIntervalSince1970: 1_720_000_000)

    init() throws {
        issuer = try NKeyPair.generate(.account)
    }

    // MARK: Round trips

    @Test func deployRoundTrip() throws {
        let deploy = try WorkloadClaims.deploy(name: "echo_service-1", artifactHash: hash, issuer: issuer, issuedAt: now)
        let checked = try WorkloadClaims.verifyDeploy(deploy.token, validIssuers: [issuer.publicKey], at: now)
        #expect(checked == deploy)
        #expect(checked.name == "echo_service-1")
        #expect(checked.issuer == issuer.publicKey)
        #expect(checked.artifactHash == hash)
        #expect(checked.issuedAt == 1_720_000_000)
        #expect(checked.expires == nil)
        #expect(!checked.id.isEmpty)
        try checked.checkArtifact(sha256Hex: hash)
        try checked.checkArtifact(sha256Hex: hash.uppercased())
    }

    @Test func deployTokenIsNATSGenericClaims() throws {
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash.uppercased(), issuer: issuer, issuedAt: now)
        let jwt = try NATSJWT(token: deploy.token)
        #expect(jwt.claims.subject == "echo")
        #expect(jwt.claims.issuer == issuer.publicKey)
        #expect(jwt.claims.nats["hash"] == .string(hash))
        #expect(jwt.claims.id == deploy.id)
        let header = try #require(deploy.token.split(separator: ".").first)
        #expect(header == "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ")
    }

    @Test(arguments: [NKeyPrefix.account, .user, .operator, .server])
    func anySigningRoleMayIssue(role: NKeyPrefix) throws {
        let key = try NKeyPair.generate(role)
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash, issuer: key)
        #expect(try WorkloadClaims.verifyDeploy(deploy.token).issuer == key.publicKey)
    }

    @Test func expiryRoundTrip() throws {
        let deploy = try WorkloadClaims.deploy(
            name: "echo", artifactHash: hash, issuer: issuer, expires: now.addingTimeInterval(60), issuedAt: now)
        #expect(deploy.expires == 1_720_000_060)
        _ = try WorkloadClaims.verifyDeploy(deploy.token, at: now.addingTimeInterval(59))
    }

    @Test func emptyAllowListAcceptsAnyIssuer() throws {
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash, issuer: issuer)
        _ = try WorkloadClaims.verify(deploy.token, validIssuers: [])
        let other = try NKeyPair.generate(.account)
        _ = try WorkloadClaims.verify(deploy.token, validIssuers: [other.publicKey, issuer.publicKey])
    }

    // MARK: Refusals

    @Test func tamperedPayloadIsRefused() throws {
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash, issuer: issuer)
        var parts = deploy.token.split(separator: ".").map(String.init)
        // Re-encode the payload with another workload name but keep the signature.
        let payload = try #require(Data(base64URL: parts[1]))
        let forged = String(decoding: payload, as: UTF8.self).replacingOccurrences(of: "\"echo\"", with: "\"evil\"")
        parts[1] = Data(forged.utf8).base64URL
        let error = try claimsError { try WorkloadClaims.verify(parts.joined(separator: ".")) }
        guard case .invalidToken(.badSignature(let signer)) = error else {
            Issue.record("expected a bad signature, got \(error)")
            return
        }
        #expect(signer == issuer.publicKey)
        #expect(error.description.contains("signature"))
    }

    @Test func tamperedSignatureIsRefused() throws {
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash, issuer: issuer)
        var token = Array(deploy.token)
        let index = token.count - 5
        token[index] = token[index] == "A" ? "B" : "A"
        let error = try claimsError { try WorkloadClaims.verify(String(token)) }
        #expect(error.description.contains("invalid workload JWT"))
    }

    @Test(arguments: ["", "not-a-jwt", "a.b", "a.b.c", "....", "eyJ0eXAiOiJKV1QifQ.e30.AAAA"])
    func garbageTokensAreRefused(token: String) throws {
        let error = try claimsError { try WorkloadClaims.verify(token) }
        guard case .invalidToken = error else {
            Issue.record("expected invalidToken, got \(error)")
            return
        }
    }

    @Test func wrongIssuerIsRefused() throws {
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash, issuer: issuer)
        let trusted = try NKeyPair.generate(.account)
        let error = try claimsError { try WorkloadClaims.verify(deploy.token, validIssuers: [trusted.publicKey]) }
        #expect(error == .untrustedIssuer(name: "echo", issuer: issuer.publicKey))
        #expect(error.description.contains("issuer"))
        #expect(error.description.contains("echo"))
    }

    @Test(arguments: ["ec ho", "echo.svc", "echo/1", "échø", "echo*", ">", "a\u{0}b", "x;rm"])
    func badNameCharactersAreRefused(name: String) throws {
        let error = try claimsError { try WorkloadClaims.deploy(name: name, artifactHash: hash, issuer: issuer) }
        guard case .invalidName(let refused, let reason) = error else {
            Issue.record("expected invalidName, got \(error)")
            return
        }
        #expect(refused == name)
        #expect(reason.contains("not allowed"))
        #expect(error.description.contains("workload name (sub)"))
    }

    @Test func badNameInASignedTokenIsRefused() throws {
        // A token signed by someone else's tooling, with a name we would never sign.
        let jwt = try NATSJWT.encode(NATSJWTClaims(subject: "../etc", nats: ["hash": .string(hash)]), signer: issuer)
        let error = try claimsError { try WorkloadClaims.verifyDeploy(jwt.token) }
        guard case .invalidName("../etc", _) = error else {
            Issue.record("expected invalidName, got \(error)")
            return
        }
    }

    @Test func nameLengthLimits() throws {
        let longest = String(repeating: "a", count: WorkloadClaims.maxNameLength)
        #expect(WorkloadClaims.isValidName(longest))
        #expect(!WorkloadClaims.isValidName(longest + "a"))
        #expect(!WorkloadClaims.isValidName(""))
        let error = try claimsError { try WorkloadClaims.validateName(longest + "a") }
        #expect(error.description.contains("65 bytes"))
        let empty = try claimsError { try WorkloadClaims.validateName("") }
        #expect(empty.description.contains("empty"))
    }

    @Test func expiredTokenIsRefused() throws {
        let deploy = try WorkloadClaims.deploy(
            name: "echo", artifactHash: hash, issuer: issuer, expires: now.addingTimeInterval(60), issuedAt: now)
        let error = try claimsError { try WorkloadClaims.verifyDeploy(deploy.token, at: now.addingTimeInterval(61)) }
        #expect(error == .expired(name: "echo", expiresAt: 1_720_000_060, now: 1_720_000_061))
        #expect(error.description.contains("exp"))
    }

    @Test func notYetValidTokenIsRefused() throws {
        let jwt = try NATSJWT.encode(
            NATSJWTClaims(subject: "echo", notBefore: now.addingTimeInterval(100), nats: ["hash": .string(hash)]),
            signer: issuer, issuedAt: now)
        let error = try claimsError { try WorkloadClaims.verifyDeploy(jwt.token, at: now) }
        #expect(error == .notYetValid(name: "echo", notBefore: 1_720_000_100, now: 1_720_000_000))
        #expect(error.description.contains("nbf"))
    }

    @Test func deployTokenNeedsAHash() throws {
        let missing = try NATSJWT.encode(NATSJWTClaims(subject: "echo"), signer: issuer)
        let error = try claimsError { try WorkloadClaims.verifyDeploy(missing.token) }
        #expect(error == .missingClaim(name: "echo", claim: "nats.hash"))
        #expect(error.description.contains("nats.hash"))

        // What the Nex 0.2 CLI sends.
        let todo = try NATSJWT.encode(NATSJWTClaims(subject: "echo", nats: ["hash": "abc12345TODOmakethisreal"]),
                                      signer: issuer)
        let invalid = try claimsError { try WorkloadClaims.verifyDeploy(todo.token) }
        guard case .invalidClaim("echo", "nats.hash", _) = invalid else {
            Issue.record("expected invalidClaim nats.hash, got \(invalid)")
            return
        }

        let number = try NATSJWT.encode(NATSJWTClaims(subject: "echo", nats: ["hash": 42]), signer: issuer)
        let wrongType = try claimsError { try WorkloadClaims.verifyDeploy(number.token) }
        #expect(wrongType == .invalidClaim(name: "echo", claim: "nats.hash", reason: "must be a string"))
    }

    @Test func aNodeAllowingUnverifiedHashesTakesThePlaceholderWithNoVerifiedHash() throws {
        let todo = try NATSJWT.encode(NATSJWTClaims(subject: "echo", nats: ["hash": "abc12345TODOmakethisreal"]),
                                      signer: issuer)
        let claims = try WorkloadClaims.verifyDeploy(todo.token, allowUnverifiedHash: true)
        #expect(claims.verifiedHash == nil)
        let missing = try NATSJWT.encode(NATSJWTClaims(subject: "echo"), signer: issuer)
        #expect(try WorkloadClaims.verifyDeploy(missing.token, allowUnverifiedHash: true).verifiedHash == nil)
        // The signature and the issuer are still checked.
        let other = try NKeyPair.generate(.account).publicKey
        #expect(throws: WorkloadClaimsError.self) {
            try WorkloadClaims.verifyDeploy(todo.token, validIssuers: [other], allowUnverifiedHash: true)
        }
        // A real digest is reported, lowercased, and so still checked against the artifact.
        let real = String(repeating: "AB", count: 32)
        let pinned = try NATSJWT.encode(NATSJWTClaims(subject: "echo", nats: ["hash": .string(real)]), signer: issuer)
        #expect(try WorkloadClaims.verifyDeploy(pinned.token, allowUnverifiedHash: true).verifiedHash == real.lowercased())
    }

    @Test func malformedHashIsNotSigned() throws {
        let error = try claimsError { try WorkloadClaims.deploy(name: "echo", artifactHash: "abc", issuer: issuer) }
        guard case .invalidClaim("echo", "nats.hash", _) = error else {
            Issue.record("expected invalidClaim nats.hash, got \(error)")
            return
        }
    }

    @Test func artifactHashMismatchIsRefused() throws {
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash, issuer: issuer)
        let other = String(repeating: "e", count: 64)
        let error = try claimsError { try deploy.checkArtifact(sha256Hex: other) }
        #expect(error == .artifactHashMismatch(name: "echo", claimed: hash, actual: other))
        #expect(error.description.contains("nats.hash"))
    }

    // MARK: Stop tokens

    @Test func stopTokenIsAccepted() throws {
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash, issuer: issuer, issuedAt: now)
        let stop = try WorkloadClaims.stop(name: "echo", issuer: issuer, issuedAt: now.addingTimeInterval(30))
        let checked = try deploy.verifyStop(stop.token, validIssuers: [issuer.publicKey], at: now.addingTimeInterval(31))
        #expect(checked.name == "echo")
        #expect(checked.issuer == issuer.publicKey)
        #expect(checked.artifactHash == nil)
        #expect(checked.id != deploy.id)
    }

    @Test func sameSecondStopIsAccepted() throws {
        // Nex 0.2 refused a stop token issued within the deploy token's second; we do not.
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash, issuer: issuer, issuedAt: now)
        let stop = try WorkloadClaims.stop(name: "echo", issuer: issuer, issuedAt: now)
        #expect(stop.issuedAt == deploy.issuedAt)
        #expect(stop.id != deploy.id)
        _ = try deploy.verifyStop(stop.token, at: now)
        // Two stop tokens of the same second are distinct too.
        let again = try WorkloadClaims.stop(name: "echo", issuer: issuer, issuedAt: now)
        #expect(again.id != stop.id)
        try deploy.checkStop(again)
    }

    @Test func replayedDeployTokenIsRefusedAsStop() throws {
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash, issuer: issuer, issuedAt: now)
        let error = try claimsError { try deploy.verifyStop(deploy.token, at: now) }
        #expect(error == .replayedToken(name: "echo", jti: deploy.id))
        #expect(error.description.contains("jti"))
    }

    @Test func stopForAnotherWorkloadIsRefused() throws {
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash, issuer: issuer)
        let stop = try WorkloadClaims.stop(name: "other", issuer: issuer)
        let error = try claimsError { try deploy.verifyStop(stop.token) }
        #expect(error == .stopClaimMismatch(claim: "sub", deployed: "echo", stop: "other"))
        #expect(error.description.contains("sub"))
    }

    @Test func stopByAnotherIssuerIsRefused() throws {
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash, issuer: issuer)
        let intruder = try NKeyPair.generate(.account)
        let stop = try WorkloadClaims.stop(name: "echo", issuer: intruder)
        let error = try claimsError { try deploy.verifyStop(stop.token) }
        #expect(error == .stopClaimMismatch(claim: "iss", deployed: issuer.publicKey, stop: intruder.publicKey))
        #expect(error.description.contains("iss"))
        // And with an allow-list, the intruder is refused as an issuer first.
        let refused = try claimsError { try deploy.verifyStop(stop.token, validIssuers: [issuer.publicKey]) }
        #expect(refused == .untrustedIssuer(name: "echo", issuer: intruder.publicKey))
    }

    @Test func expiredStopIsRefused() throws {
        let deploy = try WorkloadClaims.deploy(name: "echo", artifactHash: hash, issuer: issuer, issuedAt: now)
        let stop = try WorkloadClaims.stop(name: "echo", issuer: issuer, expires: now.addingTimeInterval(5), issuedAt: now)
        let error = try claimsError { try deploy.verifyStop(stop.token, at: now.addingTimeInterval(10)) }
        guard case .expired("echo", _, _) = error else {
            Issue.record("expected expired, got \(error)")
            return
        }
    }
}

/// Runs `body`, which must throw an `E`, and returns that error.
func expectError<E: Error>(
    _ type: E.Type, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Any
) throws -> E {
    do {
        let value = try body()
        Issue.record("expected \(E.self), got \(value)", sourceLocation: sourceLocation)
        throw ExpectedErrorMissing()
    } catch let error as E {
        return error
    }
}

/// ``expectError(_:sourceLocation:_:)`` for ``WorkloadClaimsError``.
func claimsError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Any) throws
    -> WorkloadClaimsError
{
    try expectError(WorkloadClaimsError.self, sourceLocation: sourceLocation, body)
}

struct ExpectedErrorMissing: Error {}

extension Data {
    init?(base64URL text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        self.init(base64Encoded: base64)
    }

    var base64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
