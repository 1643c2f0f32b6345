import Synchronization

/// The changes of a key-value bucket as an `AsyncSequence`: the current values first (or the
/// whole history), then ``KeyValueWatchEvent/initialValuesDone``, then every update as it happens.
///
/// ```swift
/// let watcher = try await kv.watch("config.>")
/// for try await event in watcher {
///     switch event {
///     case .entry(let entry): print(entry.key, entry.operation, entry.string)
///     case .initialValuesDone: print("up to date")
///     }
/// }
/// ```
///
/// Built on an ``OrderedConsumer``: it survives missed deliveries and server restarts by
/// recreating its consumer. Call ``stop()`` when done; one task should iterate it.
public final class KeyValueWatcher: AsyncSequence, Sendable {
    /// The watcher yields changes of keys, and one marker when the initial values are done.
    public typealias Element = KeyValueWatchEvent
    /// Iteration throws when the consumer cannot be recreated or the client is closed.
    public typealias Failure = any Error

    /// The bucket watched.
    public let bucket: String
    /// The key pattern watched (`>` for all keys).
    public let pattern: String
    let consumer: OrderedConsumer
    let subjectPrefix: String
    let ignoreDeletes: Bool
    let updatesOnly: Bool
    /// Whether the initial values were delivered, and whether the marker saying so is still owed;
    /// shared by the iterators, which all read the same consumer.
    private let progress = Mutex((initialDone: false, markerOwed: false))

    init(bucket: String, pattern: String, consumer: OrderedConsumer, ignoreDeletes: Bool, updatesOnly: Bool) {
        self.bucket = bucket
        self.pattern = pattern
        self.consumer = consumer
        self.subjectPrefix = "$KV.\(bucket)."
        self.ignoreDeletes = ignoreDeletes
        self.updatesOnly = updatesOnly
    }

    /// Ends the sequence and deletes the consumer.
    public func stop() async {
        await consumer.stop()
    }

    /// An iterator over the watched changes.
    public func makeAsyncIterator() -> Iterator {
        Iterator(watcher: self, inner: consumer.makeAsyncIterator())
    }

    /// Iterates the watcher; iterators share the watcher's progress.
    public struct Iterator: AsyncIteratorProtocol {
        /// A change of a key, or the marker that the initial values are done.
        public typealias Element = KeyValueWatchEvent
        /// Any error of the underlying consumer.
        public typealias Failure = any Error

        let watcher: KeyValueWatcher
        var inner: OrderedConsumer.Iterator

        /// The next event; nil once the watcher is stopped.
        public mutating func next() async throws -> KeyValueWatchEvent? {
            try await next(isolation: nil)
        }

        /// The next event, on `actor`; nil once the watcher is stopped.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> KeyValueWatchEvent? {
            let immediate = watcher.progress.withLock { p -> Bool in
                if p.markerOwed {
                    p.markerOwed = false
                    return true
                }
                if !p.initialDone && (watcher.updatesOnly || watcher.consumer.initialPending == 0) {
                    p.initialDone = true
                    return true
                }
                return false
            }
            if immediate { return .initialValuesDone }
            while true {
                guard let message = try await inner.next(isolation: actor) else { return nil }
                let caughtUp = watcher.progress.withLock { p -> Bool in
                    guard !p.initialDone, message.pending == 0 else { return false }
                    p.initialDone = true
                    return true
                }
                guard message.subject.hasPrefix(watcher.subjectPrefix) else {
                    if caughtUp { return .initialValuesDone }
                    continue
                }
                let entry = KeyValueEntry(
                    bucket: watcher.bucket, key: String(message.subject.dropFirst(watcher.subjectPrefix.count)),
                    value: message.payload, revision: message.streamSequence, created: message.timestamp,
                    delta: message.pending, operation: KeyValueEntry.operation(of: message.headers))
                if watcher.ignoreDeletes && entry.operation != .put {
                    if caughtUp { return .initialValuesDone }
                    continue
                }
                if caughtUp { watcher.progress.withLock { $0.markerOwed = true } }
                return .entry(entry)
            }
        }
    }
}
