import FoundationEssentials

extension DecodingError {
    /// What was wrong with a control message, naming the field: `missing field 'hash'`,
    /// `field 'limits.memory_bytes' must be Int`, `malformed JSON`. Used for requests the node
    /// refuses and for replies a client cannot read.
    var requestDescription: String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "body" : keys.joined(separator: ".")
        }
        switch self {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "missing field '\(parent == "body" ? key.stringValue : parent + "." + key.stringValue)'"
        case .typeMismatch(_, let context) where context.codingPath.isEmpty:
            return "the body must be a JSON object: \(context.debugDescription)"
        case .valueNotFound(_, let context) where context.codingPath.isEmpty:
            return "the body must be a JSON object, not null"
        case .typeMismatch(let type, let context): return "field '\(path(context))' must be \(type)"
        case .valueNotFound(let type, let context): return "field '\(path(context))' must be a \(type), not null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "malformed JSON" : "field '\(path(context))': \(context.debugDescription)"
        @unknown default: return "\(self)"
        }
    }
}
