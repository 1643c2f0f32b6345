import FoundationEssentials
import NIOCore

/// One revision of a key: a value, or a delete or purge marker.
public struct KeyValueEntry: Sendable, Equatable {
    /// What a revision did to its key.
    public enum Operation: String, Sendable {
        /// A value was written.
        case put = "PUT"
        /// The key was deleted (`KV-Operation: DEL`); earlier revisions remain in the history.
        case delete = "DEL"
        /// The key was purged (`KV-Operation: PURGE`); earlier revisions are gone.
        case purge = "PURGE"
    }

    /// The bucket it belongs to.
    public var bucket: String
    /// The key, without the `$KV.<bucket>.` prefix.
    public var key: String
    /// The value; empty for delete and purge markers (and for watchers with `headersOnly`).
    public var value: ByteBuffer
    /// The stream sequence of this revision.
    public var revision: UInt64
    /// When this revision was stored.
    public var created: Date
    /// For entries from a watcher: how many messages remained to deliver after this one; 0 otherwise.
    public var delta: UInt64
    /// Whether this revision is a value, a delete or a purge.
    public var operation: Operation

    /// An entry (for tests and for code that builds entries itself).
    package init(
        bucket: String, key: String, value: ByteBuffer, revision: UInt64, created: Date, delta: UInt64 = 0,
        operation: Operation = .put
    ) {
        self.bucket = bucket
        self.key = key
        self.value = value
        self.revision = revision
        self.created = created
        self.delta = delta
        self.operation = operation
    }

    /// The value as UTF-8 text.
    public var string: String { String(buffer: value) }
    /// The value as bytes.
    public var bytes: [UInt8] { Array(buffer: value) }

    /// The operation recorded in a message's headers: `KV-Operation`, or the marker a newer server
    /// writes when it removes a key itself (`Nats-Marker-Reason`).
    static func operation(of headers: NATSHeaders?) -> Operation {
        guard let headers else { return .put }
        if let operation = headers["KV-Operation"] {
            switch operation {
            case "DEL": return .delete
            case "PURGE": return .purge
            default: return .put
            }
        }
        if let reason = headers["Nats-Marker-Reason"] {
            return reason == "Remove" ? .delete : .purge
        }
        return .put
    }
}
