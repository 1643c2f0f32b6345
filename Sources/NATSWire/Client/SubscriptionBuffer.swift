import Synchronization

/// The bounded queue between the event loop (producer) and one subscription's consumer.
///
/// The producer appends under a lock; the consumer takes everything queued in one swap,
/// so the lock is taken once per batch, not once per message. Past the message or byte
/// limit, new messages are dropped and counted: memory stays bounded whatever the rate.
final class SubscriptionBuffer: Sendable {
    enum PushResult {
        /// Queued; `wakeConsumer` is true when the consumer is waiting and ``signal()`` is owed.
        case queued(wakeConsumer: Bool)
        /// Dropped; `firstDrop` is true for the first drop since the consumer last caught up.
        case dropped(firstDrop: Bool, total: Int)
        case finished
    }

    private struct State: ~Copyable {
        var items: [NATSMessage] = []
        var bytes = 0
        var dropped = 0
        /// Every message the server delivered, queued or dropped.
        var delivered = 0
        var overflowing = false
        var finished = false
        var waiter: CheckedContinuation<[NATSMessage], Never>?
    }

    let maxMessages: Int
    let maxBytes: Int
    private let state = Mutex(State())

    init(maxMessages: Int, maxBytes: Int) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }

    var droppedCount: Int { state.withLock { $0.dropped } }
    var deliveredCount: Int { state.withLock { $0.delivered } }
    var pendingCount: Int { state.withLock { $0.items.count } }

    /// Queues a message without waking the consumer: the event loop calls ``signal()`` once
    /// per socket read, so a consumer wakes per batch rather than per message.
    /// Returns what happened and how many messages were delivered so far, this one included.
    func push(_ message: NATSMessage) -> (PushResult, delivered: Int) {
        let size = message.payload.readableBytes
        return state.withLock { s in
            if s.finished { return (.finished, s.delivered) }
            s.delivered += 1
            if s.items.count >= maxMessages || s.bytes + size > maxBytes {
                s.dropped += 1
                let first = !s.overflowing
                s.overflowing = true
                return (.dropped(firstDrop: first, total: s.dropped), s.delivered)
            }
            s.items.append(message)
            s.bytes += size
            return (.queued(wakeConsumer: s.waiter != nil), s.delivered)
        }
    }

    /// Hands everything queued to a waiting consumer, if one waits.
    func signal() {
        let resume: (CheckedContinuation<[NATSMessage], Never>, [NATSMessage])? = state.withLock { s in
            guard let waiter = s.waiter, !s.items.isEmpty else { return nil }
            s.waiter = nil
            return (waiter, Self.drain(&s))
        }
        if let (waiter, batch) = resume { waiter.resume(returning: batch) }
    }

    /// Ends the stream once the queued messages are consumed.
    func finish() {
        let resume: (CheckedContinuation<[NATSMessage], Never>, [NATSMessage])? = state.withLock { s in
            s.finished = true
            guard let waiter = s.waiter else { return nil }
            s.waiter = nil
            return (waiter, Self.drain(&s))
        }
        if let (waiter, batch) = resume { waiter.resume(returning: batch) }
    }

    /// Everything queued, waiting for at least one message; an empty batch means the stream ended
    /// (finished, or the waiting task was cancelled).
    func take() async -> [NATSMessage] {
        if let batch = takeNow() { return batch }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[NATSMessage], Never>) in
                let immediate: [NATSMessage]? = state.withLock { s in
                    if !s.items.isEmpty || s.finished || Task.isCancelled {
                        return Self.drain(&s)
                    }
                    s.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { s in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume(returning: [])
        }
    }

    private func takeNow() -> [NATSMessage]? {
        state.withLock { s in
            guard !s.items.isEmpty || s.finished else { return nil }
            return Self.drain(&s)
        }
    }

    private static func drain(_ s: inout State) -> [NATSMessage] {
        let batch = s.items
        s.items = []
        s.items.reserveCapacity(min(batch.count, 1024))
        s.bytes = 0
        s.overflowing = false
        return batch
    }
}
