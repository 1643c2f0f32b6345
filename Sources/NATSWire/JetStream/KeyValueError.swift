/// Errors of ``KeyValue`` buckets. Other failures surface as ``JetStreamError`` or ``NATSError``.
public enum KeyValueError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A bucket name must be non-empty letters, digits, `-` and `_`. Refused before anything is sent.
    case invalidBucketName(String)
    /// A key must be non-empty letters, digits and `-/_=.`, not starting or ending with `.` and
    /// without empty tokens (watch patterns may also use `*` and `>` tokens). Refused before anything is sent.
    case invalidKey(String)
    /// A bucket configuration that cannot be created (history above 64, say).
    case invalidConfiguration(bucket: String, reason: String)
    /// No stream `KV_<bucket>` exists.
    case bucketNotFound(String)
    /// The stream `KV_<bucket>` exists but is not a key-value bucket.
    case notAKeyValueBucket(String)
    /// The key has no value: never written, deleted or purged (or the revision asked for is not this key's).
    case keyNotFound(bucket: String, key: String)
    /// `create` found the key already holding a value; `cause` is the server's wrong-last-sequence error (err_code 10071).
    case keyExists(bucket: String, key: String, cause: JetStreamError)
    /// `update` (or a delete with an expected revision) found another revision than `expected`;
    /// `cause` is the server's wrong-last-sequence error (err_code 10071).
    case wrongLastRevision(bucket: String, key: String, expected: UInt64, cause: JetStreamError)

    /// One line naming the bucket or key involved.
    public var description: String {
        switch self {
        case .invalidBucketName(let name):
            return "invalid key-value bucket name '\(name)': use letters, digits, '-' and '_'"
        case .invalidKey(let key):
            return "invalid key '\(key)': use letters, digits and '-/_=.', not starting or ending with '.'"
        case .invalidConfiguration(let bucket, let reason):
            return "invalid configuration of key-value bucket '\(bucket)': \(reason)"
        case .bucketNotFound(let bucket): return "key-value bucket '\(bucket)' not found"
        case .notAKeyValueBucket(let bucket): return "stream KV_\(bucket) is not a key-value bucket"
        case .keyNotFound(let bucket, let key): return "key '\(key)' not found in bucket '\(bucket)'"
        case .keyExists(let bucket, let key, _): return "key '\(key)' already exists in bucket '\(bucket)'"
        case .wrongLastRevision(let bucket, let key, let expected, let cause):
            return "key '\(key)' of bucket '\(bucket)' is not at revision \(expected): \(cause.errorDescription)"
        }
    }
}
