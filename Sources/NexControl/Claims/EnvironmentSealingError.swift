import NATSWire

/// Why a deploy environment could not be sealed or opened. Each case says which step failed.
public enum EnvironmentSealingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The environment could not be serialised to JSON.
    case encodingFailed(reason: String)
    /// The recipient (node) public xkey is not a valid `X...` key.
    case invalidRecipientKey(String, reason: String)
    /// Sealing failed in libsodium.
    case sealFailed(reason: String)
    /// `environment` is not standard base64.
    case invalidBase64(length: Int)
    /// `sender_public_key` is not a valid `X...` key.
    case invalidSenderKey(String, reason: String)
    /// The box did not open: sealed to another node, by another sender, tampered, or not `xkv1`.
    case openFailed(sender: String, reason: String)
    /// The opened plaintext is not JSON.
    case notJSON(reason: String)
    /// The opened plaintext is JSON but not an object of strings.
    case notStringMap(reason: String)

    /// One line naming the step that failed; keys are shortened, never shown in full.
    public var description: String {
        switch self {
        case let .encodingFailed(reason):
            "cannot encode the environment as JSON: \(reason)"
        case let .invalidRecipientKey(key, reason):
            "cannot seal the environment to node xkey \(NKeyError.summarize(key)): \(reason)"
        case let .sealFailed(reason):
            "cannot seal the environment: \(reason)"
        case let .invalidBase64(length):
            "environment is not valid standard base64 (\(length) chars)"
        case let .invalidSenderKey(key, reason):
            "sender_public_key \(NKeyError.summarize(key)) is not a curve public key (X...): \(reason)"
        case let .openFailed(sender, reason):
            "cannot open the environment sealed by \(NKeyError.summarize(sender)): \(reason)"
        case let .notJSON(reason):
            "opened environment is not JSON: \(reason)"
        case let .notStringMap(reason):
            "opened environment is not a JSON object of strings: \(reason)"
        }
    }
}
