import Foundation
import NATSWire
import Testing
@testable import NexControl

@Suite struct EnvironmentSealingTests {
    let sender: XKeyPair
    let node: XKeyPair
    let environment = ["NATS_URL": "nats://127.0.0.1:4222", "NATS_USER_SEED": "SUA...", "EMPTY": "", "ÜNICODE": "✓ \"q\""]

    init() throws {
        sender = try XKeyPair.generate()
        node = try XKeyPair.generate()
    }

    @Test func roundTrip() throws {
        let sealed = try EnvironmentSealing.seal(environment, sender: sender, recipientPublicKey: node.publicKey)
        // The plaintext is not there, neither as text nor as base64 of the JSON (a fixed
        // three-letter probe would match random ciphertext about once in two thousand runs).
        let plainJSON = String(decoding: try JSONEncoder().encode(environment), as: UTF8.self)
        #expect(!sealed.contains("nats://127.0.0.1:4222"))
        #expect(!sealed.contains(String(Data(plainJSON.utf8).base64EncodedString().prefix(16))))
        let opened = try EnvironmentSealing.open(sealed, senderPublicKey: sender.publicKey, recipient: node)
        #expect(opened == environment)
    }

    @Test func emptyEnvironmentRoundTrip() throws {
        let sealed = try EnvironmentSealing.seal([:], sender: sender, recipientPublicKey: node.publicKey)
        #expect(try EnvironmentSealing.open(sealed, senderPublicKey: sender.publicKey, recipient: node) == [:])
    }

    @Test func wireFormatIsStdBase64OfXKV1() throws {
        let sealed = try EnvironmentSealing.seal(["A": "1"], sender: sender, recipientPublicKey: node.publicKey)
        let bytes = try #require(Data(base64Encoded: sealed))
        #expect(bytes.prefix(4) == Data("xkv1".utf8))
        // "xkv1" + 24-byte nonce + 16-byte MAC + {"A":"1"}
        #expect(bytes.count == 4 + 24 + 16 + 9)
        // The plaintext is the JSON object, as Nex 0.2's node expects.
        let plain = try node.open(Array(bytes), from: sender.publicKey)
        #expect(String(decoding: plain, as: UTF8.self) == #"{"A":"1"}"#)
    }

    @Test func opensWhatAnotherImplementationSealed() throws {
        // As Nex 0.2's CLI does: json.Marshal(map) sealed with the nkeys curve key, std base64.
        let plain = Array(#"{"FOO":"bar","PORT":"8080"}"#.utf8)
        let sealed = Data(try sender.seal(plain, to: node.publicKey)).base64EncodedString()
        let opened = try EnvironmentSealing.open(sealed, senderPublicKey: sender.publicKey, recipient: node)
        #expect(opened == ["FOO": "bar", "PORT": "8080"])
    }

    @Test func sealedToAnotherNodeDoesNotOpen() throws {
        let other = try XKeyPair.generate()
        let sealed = try EnvironmentSealing.seal(environment, sender: sender, recipientPublicKey: other.publicKey)
        let error = try sealingError { try EnvironmentSealing.open(sealed, senderPublicKey: sender.publicKey, recipient: node) }
        guard case .openFailed(let who, _) = error else {
            Issue.record("expected openFailed, got \(error)")
            return
        }
        #expect(who == sender.publicKey)
        #expect(error.description.contains("cannot open"))
    }

    @Test func wrongSenderKeyDoesNotOpen() throws {
        let sealed = try EnvironmentSealing.seal(environment, sender: sender, recipientPublicKey: node.publicKey)
        let impostor = try XKeyPair.generate()
        let error = try sealingError { try EnvironmentSealing.open(sealed, senderPublicKey: impostor.publicKey, recipient: node) }
        guard case .openFailed = error else {
            Issue.record("expected openFailed, got \(error)")
            return
        }
    }

    @Test func tamperedCiphertextDoesNotOpen() throws {
        let sealed = try EnvironmentSealing.seal(environment, sender: sender, recipientPublicKey: node.publicKey)
        var bytes = try #require(Data(base64Encoded: sealed))
        bytes[bytes.count - 1] ^= 0x01
        let error = try sealingError {
            try EnvironmentSealing.open(bytes.base64EncodedString(), senderPublicKey: sender.publicKey, recipient: node)
        }
        guard case .openFailed = error else {
            Issue.record("expected openFailed, got \(error)")
            return
        }
    }

    @Test(arguments: ["not base64 at all!", "ZW52===", "eGt2MQ", "%%%%", "eGt2\nMQ=="])
    func garbageBase64IsRefused(text: String) throws {
        let error = try sealingError { try EnvironmentSealing.open(text, senderPublicKey: sender.publicKey, recipient: node) }
        #expect(error == .invalidBase64(length: text.utf8.count))
        #expect(error.description.contains("base64"))
    }

    @Test func shortOrUnversionedPayloadDoesNotOpen() throws {
        for payload in ["", Data("xkv1".utf8).base64EncodedString(), Data(repeating: 7, count: 64).base64EncodedString()] {
            let error = try sealingError { try EnvironmentSealing.open(payload, senderPublicKey: sender.publicKey, recipient: node) }
            guard case .openFailed = error else {
                Issue.record("expected openFailed for \(payload), got \(error)")
                continue
            }
        }
    }

    @Test(arguments: ["", "XNOTAKEY", "UAK7XKWQCNCTP7MVVC4NS6GKPNBOATH3NAOYQK4JGXDKAXKEV3L2VAZY",
                      "SXAOPPXGH4ZJAVKS3XHCDRHTAAJMFCY4SMR7EXTFWNKMXF6UQ2Y5SZL5VI"])
    func badSenderKeyIsRefused(key: String) throws {
        let sealed = try EnvironmentSealing.seal(environment, sender: sender, recipientPublicKey: node.publicKey)
        let error = try sealingError { try EnvironmentSealing.open(sealed, senderPublicKey: key, recipient: node) }
        guard case .invalidSenderKey(key, _) = error else {
            Issue.record("expected invalidSenderKey, got \(error)")
            return
        }
        #expect(error.description.contains("sender_public_key"))
        #expect(!error.description.contains("SXAOPPXGH4"), "seeds are never echoed")
    }

    @Test func badRecipientKeyIsRefused() throws {
        let error = try sealingError { try EnvironmentSealing.seal(environment, sender: sender, recipientPublicKey: "NNODE") }
        guard case .invalidRecipientKey("NNODE", _) = error else {
            Issue.record("expected invalidRecipientKey, got \(error)")
            return
        }
    }

    @Test func nonJSONPlaintextIsRefused() throws {
        let sealed = Data(try sender.seal(Array("FOO=bar".utf8), to: node.publicKey)).base64EncodedString()
        let error = try sealingError { try EnvironmentSealing.open(sealed, senderPublicKey: sender.publicKey, recipient: node) }
        guard case .notJSON = error else {
            Issue.record("expected notJSON, got \(error)")
            return
        }
        #expect(error.description.contains("not JSON"))
    }

    @Test(arguments: [
        (#"["a","b"]"#, "an array"), (#""text""#, "a string"), ("null", "null"), ("42", "a number"),
        (#"{"PORT":8080}"#, "'PORT' is a number"), (#"{"A":"x","B":{"c":"d"}}"#, "'B' is an object"),
        (#"{"FLAG":true}"#, "'FLAG' is a boolean"), (#"{"N":null}"#, "'N' is null"),
    ])
    func nonStringMapPlaintextIsRefused(json: String, mentions: String) throws {
        let sealed = Data(try sender.seal(Array(json.utf8), to: node.publicKey)).base64EncodedString()
        let error = try sealingError { try EnvironmentSealing.open(sealed, senderPublicKey: sender.publicKey, recipient: node) }
        guard case .notStringMap(let reason) = error else {
            Issue.record("expected notStringMap, got \(error)")
            return
        }
        #expect(reason.contains(mentions))
    }

    @Test func buildsACompleteDeployRequest() throws {
        let issuer = try NKeyPair.generate(.account)
        let claims = try WorkloadClaims.deploy(name: "echo", artifactHash: String(repeating: "a", count: 64), issuer: issuer)
        let request = try EnvironmentSealing.deployRequest(
            type: "wasm", location: "nats://NEXCLIFILES/echo", workloadJWT: claims.token, environment: environment,
            sender: sender, targetNode: "NNODE", targetXKey: node.publicKey, argv: ["--fast"], description: "echo fn",
            essential: false, triggerSubjects: ["echo.>"])
        #expect(request.type == "wasm")
        #expect(request.location == "nats://NEXCLIFILES/echo")
        #expect(request.workloadJWT == claims.token)
        #expect(request.senderPublicKey == sender.publicKey)
        #expect(request.targetNode == "NNODE")
        #expect(request.argv == ["--fast"])
        #expect(request.description == "echo fn")
        #expect(request.essential == false)
        #expect(request.triggerSubjects == ["echo.>"])
        #expect(request.triggerConnection == nil)
        #expect(request.hostServices == nil)

        // What the node does with it.
        let opened = try EnvironmentSealing.open(request.environment, senderPublicKey: request.senderPublicKey, recipient: node)
        #expect(opened == environment)
        let verified = try WorkloadClaims.verifyDeploy(request.workloadJWT, validIssuers: [issuer.publicKey])
        #expect(verified.name == "echo")

        // No seed travels in clear.
        let wire = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
        #expect(!wire.contains("SUA..."))
    }
}

/// ``expectError(_:sourceLocation:_:)`` for ``EnvironmentSealingError``.
func sealingError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Any) throws
    -> EnvironmentSealingError
{
    try expectError(EnvironmentSealingError.self, sourceLocation: sourceLocation, body)
}
