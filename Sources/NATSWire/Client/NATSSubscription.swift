/// A subscription: an `AsyncSequence` of the messages delivered to it.
///
/// The sequence ends when the subscription is unsubscribed (after the messages already
/// buffered), when its `max` messages have arrived, when the client is drained or closed,
/// or when the consuming task is cancelled. One task should consume it.
public final class NATSSubscription: AsyncSequence, Sendable {
    /// Each element is one delivered message.
    public typealias Element = NATSMessage
    /// Iteration never throws: the sequence just ends.
    public typealias Failure = Never

    /// The subject (possibly with wildcards) it listens on.
    public let subject: String
    /// The queue group it belongs to, if any.
    public let queue: String?
    /// The subscription id on the wire.
    public let sid: Int
    let buffer: SubscriptionBuffer
    private let client: NATSClient

    init(subject: String, queue: String?, sid: Int, buffer: SubscriptionBuffer, client: NATSClient) {
        self.subject = subject
        self.queue = queue
        self.sid = sid
        self.buffer = buffer
        self.client = client
    }

    /// Messages dropped because the consumer fell behind (slow consumer).
    public var droppedMessages: Int { buffer.droppedCount }
    /// Messages delivered but not yet consumed.
    public var pendingMessages: Int { buffer.pendingCount }

    /// Stops the subscription now, or after `max` messages in total have been delivered.
    public func unsubscribe(after max: Int? = nil) async throws {
        try client.unsubscribe(self, after: max)
    }

    /// Stops the subscription without losing what the server already routed to it (for a
    /// queue subscription, messages no other member will get): sends `UNSUB`, waits for the
    /// server's answer to a `PING` behind it, then ends the sequence after the messages that
    /// arrived meanwhile. Throws ``NATSError/timeout(operation:seconds:)`` when the server does
    /// not answer within `timeout`; the subscription ends either way.
    public func drain(timeout: Duration = .seconds(5)) async throws {
        try await client.drain(self, timeout: timeout)
    }

    /// The iterator of the messages; make one, from one task.
    public func makeAsyncIterator() -> Iterator {
        Iterator(buffer: buffer)
    }

    /// Takes the buffered messages in batches, so each `next()` rarely waits on a lock.
    public struct Iterator: AsyncIteratorProtocol {
        let buffer: SubscriptionBuffer
        var batch: [NATSMessage] = []
        var index = 0
        var ended = false

        /// The next message; nil once the subscription has ended.
        public mutating func next() async -> NATSMessage? {
            await next(isolation: nil)
        }

        /// The next message, without leaving `actor`; nil once the subscription has ended.
        public mutating func next(isolation actor: isolated (any Actor)?) async -> NATSMessage? {
            if index < batch.count {
                defer { index += 1 }
                return batch[index]
            }
            if ended { return nil }
            batch = await buffer.take()
            index = 0
            guard !batch.isEmpty else {
                ended = true
                return nil
            }
            index = 1
            return batch[0]
        }
    }
}
