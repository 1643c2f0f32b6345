/// Errors of ``ObjectStore`` buckets. Other failures surface as ``JetStreamError`` or ``NATSError``.
public enum ObjectStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A bucket name must be non-empty letters, digits, `-` and `_`. Refused before anything is sent.
    case invalidBucketName(String)
    /// An object name must not be empty. Refused before anything is sent.
    case invalidObjectName(String)
    /// A bucket configuration or put option that cannot be used.
    case invalidConfiguration(bucket: String, reason: String)
    /// No stream `OBJ_<bucket>` exists.
    case bucketNotFound(String)
    /// No object of that name (or it was deleted).
    case objectNotFound(bucket: String, name: String)
    /// The SHA-256 of the chunks read differs from the object's digest. Nothing was kept.
    case digestMismatch(bucket: String, name: String, expected: String, actual: String)
    /// The chunks read add up to another size than the object's. Nothing was kept.
    case sizeMismatch(bucket: String, name: String, expected: UInt64, actual: UInt64)
    /// The object's metadata cannot be used (not JSON, no nuid, a bad digest...).
    case badMetadata(bucket: String, name: String, reason: String)
    /// The object is a link to another object or bucket, which this client does not follow.
    case linkNotSupported(bucket: String, name: String)
    /// A local file could not be read or written.
    case fileError(path: String, operation: String, reason: String)

    /// One line naming the bucket or object involved.
    public var description: String {
        switch self {
        case .invalidBucketName(let name):
            return "invalid object store bucket name '\(name)': use letters, digits, '-' and '_'"
        case .invalidObjectName(let name): return "invalid object name '\(name)': it must not be empty"
        case .invalidConfiguration(let bucket, let reason): return "object store bucket '\(bucket)': \(reason)"
        case .bucketNotFound(let bucket): return "object store bucket '\(bucket)' not found"
        case .objectNotFound(let bucket, let name): return "object '\(name)' not found in bucket '\(bucket)'"
        case .digestMismatch(let bucket, let name, let expected, let actual):
            return "object '\(name)' of bucket '\(bucket)' is corrupt: digest \(actual), expected \(expected)"
        case .sizeMismatch(let bucket, let name, let expected, let actual):
            return "object '\(name)' of bucket '\(bucket)' is corrupt: \(actual) bytes, expected \(expected)"
        case .badMetadata(let bucket, let name, let reason):
            return "bad metadata of object '\(name)' in bucket '\(bucket)': \(reason)"
        case .linkNotSupported(let bucket, let name):
            return "object '\(name)' of bucket '\(bucket)' is a link, which is not supported"
        case .fileError(let path, let operation, let reason): return "cannot \(operation) \(path): \(reason)"
        }
    }
}
