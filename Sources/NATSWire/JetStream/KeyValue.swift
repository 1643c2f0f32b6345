import NIOCore

/// A key-value bucket: stream `KV_<bucket>`, one subject `$KV.<bucket>.<key>` per key, each
/// message a revision. Compatible with the buckets of nats.go, nats-py and the `nats` CLI.
///
/// ```swift
/// let kv = try await js.createKeyValue(KeyValueConfig(bucket: "settings", history: 5))
/// let revision = try await kv.put("color", "blue")
/// try await kv.update("color", "green", revision: revision)     // compare-and-set
/// print(try await kv.get("color").string)                      // green
/// for try await event in try await kv.watch() { ... }
/// ```
///
/// Names are checked before anything is sent (``KeyValueError/invalidKey(_:)``). A missing
/// bucket or key throws ``KeyValueError/bucketNotFound(_:)`` or ``KeyValueError/keyNotFound(bucket:key:)``.
public struct KeyValue: Sendable {
    /// The bucket name.
    public let bucket: String
    /// The stream holding it, `KV_<bucket>`.
    public let streamName: String
    /// Whether the stream answers direct gets (reads then skip the stream leader).
    public let allowsDirect: Bool
    let js: JetStreamContext
    /// `$KV.<bucket>.`
    let subjectPrefix: String

    init(js: JetStreamContext, bucket: String, allowsDirect: Bool) {
        self.js = js
        self.bucket = bucket
        self.streamName = Self.streamName(bucket)
        self.allowsDirect = allowsDirect
        self.subjectPrefix = "$KV.\(bucket)."
    }

    static func streamName(_ bucket: String) -> String { "KV_\(bucket)" }

    // MARK: Reading

    /// The current value of `key`. Throws ``KeyValueError/keyNotFound(bucket:key:)`` when the key
    /// was never written, or its last revision is a delete or purge.
    public func get(_ key: String) async throws -> KeyValueEntry {
        try Self.validateKey(key)
        guard let entry = try await lastEntry(key), entry.operation == .put else {
            throw KeyValueError.keyNotFound(bucket: bucket, key: key)
        }
        return entry
    }

    /// The current value of `key` as the stream's leader has it: never a replica's direct get,
    /// which may lag behind writes that were acknowledged. Throws like ``get(_:)``.
    public func getFromLeader(_ key: String) async throws -> KeyValueEntry {
        try Self.validateKey(key)
        guard let entry = try await read(.lastBySubject(subjectPrefix + key), preferDirect: false), entry.operation == .put
        else {
            throw KeyValueError.keyNotFound(bucket: bucket, key: key)
        }
        return entry
    }

    /// Revision `revision` of `key` (which may be a delete or purge marker). Throws
    /// ``KeyValueError/keyNotFound(bucket:key:)`` when that revision is gone or belongs to another key.
    public func get(_ key: String, revision: UInt64) async throws -> KeyValueEntry {
        try Self.validateKey(key)
        guard let entry = try await read(.sequence(revision)), entry.key == key else {
            throw KeyValueError.keyNotFound(bucket: bucket, key: key)
        }
        return entry
    }

    /// The last revision of `key`, markers included; nil when it has none.
    func lastEntry(_ key: String) async throws -> KeyValueEntry? {
        try await read(.lastBySubject(subjectPrefix + key))
    }

    /// Reads the message `selector` picks, as ``JetStreamContext/readMessage(stream:_:preferDirect:)`` does.
    private func read(_ selector: StoredMessage.Selector, preferDirect: Bool? = nil) async throws -> KeyValueEntry? {
        let message: StoredMessage
        do {
            message = try await js.readMessage(stream: streamName, selector, preferDirect: preferDirect ?? allowsDirect)
        } catch let error as JetStreamError where error.isNotFound {
            if error.errCode == JetStreamError.streamNotFound { throw KeyValueError.bucketNotFound(bucket) }
            return nil
        }
        guard message.subject.hasPrefix(subjectPrefix) else { return nil }
        return KeyValueEntry(
            bucket: bucket, key: String(message.subject.dropFirst(subjectPrefix.count)), value: message.payload,
            revision: message.sequence, created: message.time, operation: KeyValueEntry.operation(of: message.headers))
    }

    // MARK: Writing

    /// Writes a value; returns its revision.
    @discardableResult
    public func put(_ key: String, _ value: ByteBuffer) async throws -> UInt64 {
        try Self.validateKey(key)
        return try await publish(key, value, headers: nil)
    }

    /// Writes bytes. See ``put(_:_:)-(String,ByteBuffer)``.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8]) async throws -> UInt64 {
        try await put(key, ByteBuffer(bytes: value))
    }

    /// Writes UTF-8 text. See ``put(_:_:)-(String,ByteBuffer)``.
    @discardableResult
    public func put(_ key: String, _ value: String) async throws -> UInt64 {
        try await put(key, ByteBuffer(string: value))
    }

    /// Writes a value only if the key has none (never written, or deleted or purged); returns
    /// its revision. Throws ``KeyValueError/keyExists(bucket:key:cause:)`` otherwise.
    @discardableResult
    public func create(_ key: String, _ value: ByteBuffer) async throws -> UInt64 {
        try Self.validateKey(key)
        do {
            return try await publish(key, value, headers: nil, expectedRevision: 0)
        } catch let error as JetStreamError where error.isWrongLastSequence {
            // A delete or purge marker is a revision too: a deleted key may be created again.
            if let last = try await lastEntry(key), last.operation != .put {
                do {
                    return try await publish(key, value, headers: nil, expectedRevision: last.revision)
                } catch let again as JetStreamError where again.isWrongLastSequence {
                    throw KeyValueError.keyExists(bucket: bucket, key: key, cause: again)
                }
            }
            throw KeyValueError.keyExists(bucket: bucket, key: key, cause: error)
        }
    }

    /// Creates from bytes. See ``create(_:_:)-(String,ByteBuffer)``.
    @discardableResult
    public func create(_ key: String, _ value: [UInt8]) async throws -> UInt64 {
        try await create(key, ByteBuffer(bytes: value))
    }

    /// Creates from UTF-8 text. See ``create(_:_:)-(String,ByteBuffer)``.
    @discardableResult
    public func create(_ key: String, _ value: String) async throws -> UInt64 {
        try await create(key, ByteBuffer(string: value))
    }

    /// Compare-and-set: writes a value only if the key's last revision is `revision`; returns the
    /// new revision. Throws ``KeyValueError/wrongLastRevision(bucket:key:expected:cause:)`` (carrying
    /// the server's err_code 10071) when another write came first.
    @discardableResult
    public func update(_ key: String, _ value: ByteBuffer, revision: UInt64) async throws -> UInt64 {
        try Self.validateKey(key)
        return try await publishExpecting(key, value, headers: nil, revision: revision)
    }

    /// Updates from bytes. See ``update(_:_:revision:)-(String,ByteBuffer,_)``.
    @discardableResult
    public func update(_ key: String, _ value: [UInt8], revision: UInt64) async throws -> UInt64 {
        try await update(key, ByteBuffer(bytes: value), revision: revision)
    }

    /// Updates from UTF-8 text. See ``update(_:_:revision:)-(String,ByteBuffer,_)``.
    @discardableResult
    public func update(_ key: String, _ value: String, revision: UInt64) async throws -> UInt64 {
        try await update(key, ByteBuffer(string: value), revision: revision)
    }

    /// Deletes a key: writes a delete marker (earlier revisions stay in the history). With
    /// `lastRevision`, only if the key is at that revision. Returns the marker's revision.
    @discardableResult
    public func delete(_ key: String, lastRevision: UInt64? = nil) async throws -> UInt64 {
        try Self.validateKey(key)
        return try await publishExpecting(key, ByteBuffer(), headers: ["KV-Operation": "DEL"], revision: lastRevision)
    }

    /// Purges a key: writes a purge marker that replaces every earlier revision (`Nats-Rollup: sub`).
    /// With `lastRevision`, only if the key is at that revision. Returns the marker's revision.
    @discardableResult
    public func purge(_ key: String, lastRevision: UInt64? = nil) async throws -> UInt64 {
        try Self.validateKey(key)
        return try await publishExpecting(
            key, ByteBuffer(), headers: ["KV-Operation": "PURGE", "Nats-Rollup": "sub"], revision: lastRevision)
    }

    /// The bucket's stream: its configuration (history, TTL, limits) and counters.
    public func info() async throws -> StreamInfo {
        do {
            return try await js.streamInfo(streamName)
        } catch let error as JetStreamError where error.errCode == JetStreamError.streamNotFound {
            throw KeyValueError.bucketNotFound(bucket)
        }
    }

    private func publish(
        _ key: String, _ value: ByteBuffer, headers: NATSHeaders?, expectedRevision: UInt64? = nil
    ) async throws -> UInt64 {
        var options = JetStreamPublishOptions()
        options.expectedLastSubjectSequence = expectedRevision
        do {
            return try await js.publish(value, to: subjectPrefix + key, headers: headers, options: options).sequence
        } catch let error as JetStreamError where error.kind == .notAvailable {
            throw KeyValueError.bucketNotFound(bucket)
        }
    }

    /// Publishes with an expected revision; a mismatch becomes ``KeyValueError/wrongLastRevision(bucket:key:expected:cause:)``.
    private func publishExpecting(
        _ key: String, _ value: ByteBuffer, headers: NATSHeaders?, revision: UInt64?
    ) async throws -> UInt64 {
        do {
            return try await publish(key, value, headers: headers, expectedRevision: revision)
        } catch let error as JetStreamError where error.isWrongLastSequence {
            throw KeyValueError.wrongLastRevision(bucket: bucket, key: key, expected: revision ?? 0, cause: error)
        }
    }

    // MARK: Names

    /// Bucket names: letters, digits, `-` and `_`.
    static func validateBucket(_ bucket: String) throws(KeyValueError) {
        guard !bucket.isEmpty, bucket.utf8.allSatisfy(NATSSubject.isNameByte) else {
            throw .invalidBucketName(bucket)
        }
    }

    /// Keys: letters, digits and `-/_=.`, no leading or trailing `.`, no empty token.
    static func validateKey(_ key: String) throws(KeyValueError) {
        guard isValidPattern(key, wildcards: false) else { throw .invalidKey(key) }
    }

    /// Watch patterns: keys whose tokens may also be `*`, or `>` as the last token.
    static func validatePattern(_ pattern: String) throws(KeyValueError) {
        guard isValidPattern(pattern, wildcards: true) else { throw .invalidKey(pattern) }
    }

    private static func isValidPattern(_ text: String, wildcards: Bool) -> Bool {
        let tokens = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard !text.isEmpty else { return false }
        for (index, token) in tokens.enumerated() {
            guard !token.isEmpty else { return false }
            if wildcards, token.count == 1 {
                if token.first == UInt8(ascii: "*") { continue }
                if token.first == UInt8(ascii: ">") && index == tokens.count - 1 { continue }
            }
            for byte in token where !NATSSubject.isNameByte(byte) && byte != UInt8(ascii: "/") && byte != UInt8(ascii: "=") {
                return false
            }
        }
        return true
    }
}
