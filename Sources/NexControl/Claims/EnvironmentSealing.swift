import FoundationEssentials
import NATSWire

/// Seals a workload's environment for one node, and opens it there, the way Nex 0.2 does.
///
/// The environment (a `[String: String]`) is serialised as a JSON object, sealed with XKeys
/// (NaCl box: X25519, XSalsa20-Poly1305; `"xkv1"` ‖ nonce ‖ box) from the sender's curve key
/// to the node's public xkey, and carried as standard base64 in the `environment` field of a
/// ``DeployRequest``, with the sender's public xkey in `sender_public_key`. The node learns
/// nothing else in clear: NATS user seeds a workload needs belong inside this payload.
///
/// ```swift
/// let sender = try XKeyPair.generate()
/// let request = try EnvironmentSealing.deployRequest(
///     type: "native", location: "nats://NEXCLIFILES/echo", workloadJWT: deploy.token,
///     environment: ["NATS_URL": url], sender: sender,
///     targetNode: node.nodeID, targetXKey: node.targetXKey)
/// // on the node:
/// let env = try EnvironmentSealing.open(request.environment, senderPublicKey: request.senderPublicKey,
///                                       recipient: nodeXKey)
/// ```
public enum EnvironmentSealing {
    /// Seals `environment` from `sender` to the node whose public xkey is `recipientPublicKey`.
    ///
    /// - Returns: standard base64 (with padding) of the `xkv1` sealed JSON.
    public static func seal(
        _ environment: [String: String], sender: XKeyPair, recipientPublicKey: String
    ) throws(EnvironmentSealingError) -> String {
        guard XKeyPair.isValidPublicKey(recipientPublicKey) else {
            throw .invalidRecipientKey(recipientPublicKey, reason: "not a curve public key (X...)")
        }
        let json: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            json = try encoder.encode(environment)
        } catch {
            throw .encodingFailed(reason: "\(error)")
        }
        do {
            return Data(try sender.seal(Array(json), to: recipientPublicKey)).base64EncodedString()
        } catch let error as NKeyError {
            throw .sealFailed(reason: error.description)
        } catch {
            throw .sealFailed(reason: "\(error)")
        }
    }

    /// Opens an environment sealed to `recipient` (the node's xkey) by `senderPublicKey`.
    ///
    /// - Throws: ``EnvironmentSealingError``: `invalidBase64`, `invalidSenderKey`, `openFailed`
    ///   (wrong node, wrong sender, tampered or not `xkv1`), `notJSON` or `notStringMap`.
    public static func open(
        _ sealed: String, senderPublicKey: String, recipient: XKeyPair
    ) throws(EnvironmentSealingError) -> [String: String] {
        // Canonical standard base64 only (what Go's and Foundation's encoders produce); Foundation's
        // decoder alone would also take some malformed padding.
        guard let bytes = Data(base64Encoded: sealed), bytes.base64EncodedString() == sealed else {
            throw .invalidBase64(length: sealed.utf8.count)
        }
        guard XKeyPair.isValidPublicKey(senderPublicKey) else {
            let reason = senderPublicKey.isEmpty ? "it is empty" : "not a well-formed X... key"
            throw .invalidSenderKey(senderPublicKey, reason: reason)
        }
        let plaintext: [UInt8]
        do {
            plaintext = try recipient.open(Array(bytes), from: senderPublicKey)
        } catch let error as NKeyError {
            throw .openFailed(sender: senderPublicKey, reason: error.description)
        } catch {
            throw .openFailed(sender: senderPublicKey, reason: "\(error)")
        }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(plaintext))
        } catch {
            throw .notJSON(reason: "\(plaintext.count) bytes that do not parse as JSON")
        }
        guard case let .object(members) = value else {
            throw .notStringMap(reason: "found \(kind(of: value))")
        }
        var environment: [String: String] = [:]
        for (key, member) in members {
            guard case let .string(text) = member else {
                throw .notStringMap(reason: "the value of '\(key)' is \(kind(of: member))")
            }
            environment[key] = text
        }
        return environment
    }

    /// Builds a complete ``DeployRequest``: the environment sealed to `targetXKey` (the node's
    /// `target_xkey` / `public_xkey`), the sender's public xkey, and the other fields as given.
    public static func deployRequest(
        type: String,
        location: String,
        workloadJWT: String,
        environment: [String: String],
        sender: XKeyPair,
        targetNode: String,
        targetXKey: String,
        argv: [String]? = nil,
        description: String? = nil,
        essential: Bool? = nil,
        triggerSubjects: [String]? = nil,
        jsDomain: String? = nil
    ) throws(EnvironmentSealingError) -> DeployRequest {
        DeployRequest(
            type: type,
            location: location,
            workloadJWT: workloadJWT,
            environment: try seal(environment, sender: sender, recipientPublicKey: targetXKey),
            senderPublicKey: sender.publicKey,
            targetNode: targetNode,
            argv: argv,
            description: description,
            essential: essential,
            jsDomain: jsDomain,
            triggerSubjects: triggerSubjects
        )
    }

    private static func kind(of value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
