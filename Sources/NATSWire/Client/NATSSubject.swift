/// Validation of subjects and queue groups before they reach the wire.
///
/// A subject is `.`-separated non-empty tokens without blanks or control characters, so that
/// no caller can smuggle a second protocol line into a `PUB` or `SUB`.
public enum NATSSubject {
    /// Checks a subject to publish to (wildcards are allowed through; the server decides).
    public static func validatePublish(_ subject: String) throws(NATSError) {
        let valid = subject.utf8.withContiguousStorageIfAvailable(isPlain)
            ?? Array(subject.utf8).withUnsafeBufferPointer(isPlain)
        guard valid else {
            throw NATSError.invalidSubject(subject, reason: subject.isEmpty ? "empty" : "contains a blank or control character")
        }
    }

    /// Non-empty, and no byte is a blank, a control character or DEL.
    static func isPlain(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !bytes.isEmpty else { return false }
        for byte in bytes where byte <= 0x20 || byte == 0x7F { return false }
        return true
    }

    /// Checks a subject to subscribe to: non-empty tokens, `*` and `>` only as whole tokens, `>` last.
    public static func validateSubscribe(_ subject: String) throws(NATSError) {
        try validatePublish(subject)
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false)
        for (index, token) in tokens.enumerated() {
            if token.isEmpty { throw NATSError.invalidSubject(subject, reason: "empty token") }
            if token.contains(">") && (token != ">" || index != tokens.count - 1) {
                throw NATSError.invalidSubject(subject, reason: "'>' must be the last token, alone")
            }
            if token.contains("*") && token != "*" {
                throw NATSError.invalidSubject(subject, reason: "'*' must be a whole token")
            }
        }
    }

    /// Checks a queue group name: non-empty, no blanks or control characters.
    public static func validateQueue(_ queue: String) throws(NATSError) {
        guard !queue.isEmpty, !queue.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw NATSError.invalidSubject(queue, reason: "a queue group must be non-empty without blanks")
        }
    }

    /// Whether `byte` may stand in a NATS name such as a bucket, a stream or a plain token:
    /// an ASCII letter, a digit, `-` or `_`.
    package static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"): true
        default: false
        }
    }
}
