/// The configuration of a JetStream stream (the subset the key-value and object stores use,
/// and the common limits).
///
/// Field names follow the server's JSON (`max_msgs_per_subject` is ``maxMessagesPerSubject``...).
/// Fields newer servers add are ignored when decoding; nothing newer than nats-server 2.9 is sent.
public struct StreamConfig: Codable, Sendable, Equatable {
    /// Where messages are kept.
    public enum Storage: String, Codable, Sendable {
        /// `file` keeps messages on disk; `memory` keeps them in memory only.
        case file, memory
    }

    /// When messages are removed.
    public enum Retention: String, Codable, Sendable {
        /// `limits` keeps messages until a limit (count, bytes, age) removes them; `interest` keeps them
        /// while a consumer has yet to acknowledge them.
        case limits, interest
        /// `workqueue`: a message is removed once one consumer acknowledges it.
        case workQueue = "workqueue"
    }

    /// What happens to a full stream: drop old messages or refuse new ones.
    public enum Discard: String, Codable, Sendable {
        /// `old` drops the oldest messages to make room; `new` refuses new messages.
        case old, new
    }

    /// The stream name: no `.`, `*`, `>`, `/`, backslash or blanks.
    public var name: String
    /// A description.
    public var description: String?
    /// The subjects whose messages the stream stores (wildcards allowed).
    public var subjects: [String]
    /// When messages are removed: at the limits (the default), when all consumers saw them, or once consumed.
    public var retention: Retention = .limits
    /// -1 for unlimited.
    public var maxConsumers: Int = -1
    /// -1 for unlimited.
    public var maxMessages: Int64 = -1
    /// -1 for unlimited.
    public var maxBytes: Int64 = -1
    /// Zero for no age limit.
    public var maxAge: Duration = .zero
    /// -1 for unlimited; a key-value bucket's history.
    public var maxMessagesPerSubject: Int64 = -1
    /// -1 for unlimited.
    public var maxMessageSize: Int32 = -1
    /// What a full stream does: drop its oldest messages (the default) or refuse new ones.
    public var discard: Discard = .old
    /// File (the default) or memory storage.
    public var storage: Storage = .file
    /// Copies kept in a cluster.
    public var replicas: Int = 1
    /// The window within which a repeated `Nats-Msg-Id` is a duplicate; zero for the server default (2 min).
    public var duplicateWindow: Duration = .zero
    /// Whether `Nats-Rollup` headers may replace earlier messages.
    public var allowRollupHeaders: Bool = false
    /// Whether deleting single messages through the API is refused.
    public var denyDelete: Bool = false
    /// Whether purging through the API is refused.
    public var denyPurge: Bool = false
    /// Whether any server of the stream answers `DIRECT.GET` (nats-server 2.9+).
    public var allowDirect: Bool = false
    /// A sealed stream accepts no change at all.
    public var sealed: Bool = false

    /// A configuration with the defaults above.
    public init(name: String, subjects: [String] = []) {
        self.name = name
        self.subjects = subjects
    }

    enum CodingKeys: String, CodingKey {
        case name, description, subjects, retention, maxConsumers = "max_consumers", maxMessages = "max_msgs"
        case maxBytes = "max_bytes", maxAge = "max_age", maxMessagesPerSubject = "max_msgs_per_subject"
        case maxMessageSize = "max_msg_size", discard, storage, replicas = "num_replicas"
        case duplicateWindow = "duplicate_window", allowRollupHeaders = "allow_rollup_hdrs"
        case denyDelete = "deny_delete", denyPurge = "deny_purge", allowDirect = "allow_direct", sealed
    }

    /// Decodes a configuration as the server returns it; absent limits are -1 (unlimited), absent
    /// policies the server's defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        subjects = try c.decodeIfPresent([String].self, forKey: .subjects) ?? []
        retention = try c.decodeIfPresent(Retention.self, forKey: .retention) ?? .limits
        maxConsumers = try c.decodeIfPresent(Int.self, forKey: .maxConsumers) ?? -1
        maxMessages = try c.decodeIfPresent(Int64.self, forKey: .maxMessages) ?? -1
        maxBytes = try c.decodeIfPresent(Int64.self, forKey: .maxBytes) ?? -1
        maxAge = .nanoseconds(try c.decodeIfPresent(Int64.self, forKey: .maxAge) ?? 0)
        maxMessagesPerSubject = try c.decodeIfPresent(Int64.self, forKey: .maxMessagesPerSubject) ?? -1
        maxMessageSize = try c.decodeIfPresent(Int32.self, forKey: .maxMessageSize) ?? -1
        discard = try c.decodeIfPresent(Discard.self, forKey: .discard) ?? .old
        storage = try c.decodeIfPresent(Storage.self, forKey: .storage) ?? .file
        replicas = try c.decodeIfPresent(Int.self, forKey: .replicas) ?? 1
        duplicateWindow = .nanoseconds(try c.decodeIfPresent(Int64.self, forKey: .duplicateWindow) ?? 0)
        allowRollupHeaders = try c.decodeIfPresent(Bool.self, forKey: .allowRollupHeaders) ?? false
        denyDelete = try c.decodeIfPresent(Bool.self, forKey: .denyDelete) ?? false
        denyPurge = try c.decodeIfPresent(Bool.self, forKey: .denyPurge) ?? false
        allowDirect = try c.decodeIfPresent(Bool.self, forKey: .allowDirect) ?? false
        sealed = try c.decodeIfPresent(Bool.self, forKey: .sealed) ?? false
    }

    /// Encodes the configuration as the server expects it (durations in nanoseconds).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(description, forKey: .description)
        if !subjects.isEmpty { try c.encode(subjects, forKey: .subjects) }
        try c.encode(retention, forKey: .retention)
        try c.encode(maxConsumers, forKey: .maxConsumers)
        try c.encode(maxMessages, forKey: .maxMessages)
        try c.encode(maxBytes, forKey: .maxBytes)
        try c.encode(maxAge.nanoseconds, forKey: .maxAge)
        try c.encode(maxMessagesPerSubject, forKey: .maxMessagesPerSubject)
        try c.encode(maxMessageSize, forKey: .maxMessageSize)
        try c.encode(discard, forKey: .discard)
        try c.encode(storage, forKey: .storage)
        try c.encode(replicas, forKey: .replicas)
        if duplicateWindow > .zero { try c.encode(duplicateWindow.nanoseconds, forKey: .duplicateWindow) }
        if allowRollupHeaders { try c.encode(true, forKey: .allowRollupHeaders) }
        if denyDelete { try c.encode(true, forKey: .denyDelete) }
        if denyPurge { try c.encode(true, forKey: .denyPurge) }
        if allowDirect { try c.encode(true, forKey: .allowDirect) }
        if sealed { try c.encode(true, forKey: .sealed) }
    }
}
