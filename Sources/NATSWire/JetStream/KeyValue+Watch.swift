extension KeyValue {
    /// Watches keys matching `pattern` (a key, or with `*` and `>` tokens; all keys by default).
    ///
    /// - Parameters:
    ///   - pattern: the keys to watch: a key, or a pattern with `*` and `>` tokens (`>`: every key).
    ///   - includeHistory: start with every stored revision instead of the last of each key.
    ///   - ignoreDeletes: leave out delete and purge markers.
    ///   - headersOnly: deliver entries without values (cheaper when only keys matter).
    ///   - updatesOnly: only changes made from now on (``KeyValueWatchEvent/initialValuesDone`` comes first).
    ///   - idleHeartbeat: the heartbeat of the underlying ordered consumer.
    public func watch(
        _ pattern: String = ">", includeHistory: Bool = false, ignoreDeletes: Bool = false, headersOnly: Bool = false,
        updatesOnly: Bool = false, idleHeartbeat: Duration = .seconds(5)
    ) async throws -> KeyValueWatcher {
        try Self.validatePattern(pattern)
        let policy: DeliverPolicy = updatesOnly ? .new : includeHistory ? .all : .lastPerSubject
        let consumer: OrderedConsumer
        do {
            consumer = try await js.orderedConsumer(
                stream: streamName, filterSubject: subjectPrefix + pattern, deliverPolicy: policy,
                headersOnly: headersOnly, idleHeartbeat: idleHeartbeat)
        } catch let error as JetStreamError where error.errCode == JetStreamError.streamNotFound {
            throw KeyValueError.bucketNotFound(bucket)
        }
        return KeyValueWatcher(
            bucket: bucket, pattern: pattern, consumer: consumer, ignoreDeletes: ignoreDeletes, updatesOnly: updatesOnly)
    }

    /// The keys that currently hold a value (deleted and purged keys left out), in stream order;
    /// empty for an empty bucket.
    public func keys(matching pattern: String = ">") async throws -> [String] {
        var keys: [String] = []
        var seen = Set<String>()
        try await initialEntries(pattern, includeHistory: false, ignoreDeletes: true, headersOnly: true) { entry in
            if seen.insert(entry.key).inserted { keys.append(entry.key) }
        }
        return keys
    }

    /// Every stored revision of `key`, oldest first, delete and purge markers included. Throws
    /// ``KeyValueError/keyNotFound(bucket:key:)`` when the key has none.
    public func history(_ key: String) async throws -> [KeyValueEntry] {
        try Self.validateKey(key)
        var entries: [KeyValueEntry] = []
        try await initialEntries(key, includeHistory: true, ignoreDeletes: false, headersOnly: false) { entries.append($0) }
        guard !entries.isEmpty else { throw KeyValueError.keyNotFound(bucket: bucket, key: key) }
        return entries
    }

    /// Runs a watcher until its initial values are delivered.
    private func initialEntries(
        _ pattern: String, includeHistory: Bool, ignoreDeletes: Bool, headersOnly: Bool,
        _ body: (KeyValueEntry) -> Void
    ) async throws {
        let watcher = try await watch(
            pattern, includeHistory: includeHistory, ignoreDeletes: ignoreDeletes, headersOnly: headersOnly)
        do {
            loop: for try await event in watcher {
                switch event {
                case .entry(let entry): body(entry)
                case .initialValuesDone: break loop
                }
            }
        } catch {
            await watcher.stop()
            throw error
        }
        await watcher.stop()
    }
}
