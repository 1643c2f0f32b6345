import NIOCore

/// Publishes to a stream without waiting for each acknowledgement: up to `window` messages are
/// in flight, their acks come back on one inbox subscription and are checked as they arrive.
///
/// Memory stays bounded: the window caps unacknowledged messages and the client's outbound
/// buffer caps what waits for the socket. Used by one task.
struct PublishPipeline: ~Copyable {
    let js: JetStreamContext
    let window: Int
    private let inbox: String
    private let subscription: NATSSubscription
    private var iterator: NATSSubscription.Iterator
    private let watchdog: ProgressWatchdog
    private var subjects: [UInt64: String] = [:]
    private var sent: UInt64 = 0
    private var acked: UInt64 = 0

    init(js: JetStreamContext, window: Int = 32) async throws {
        self.js = js
        self.window = Swift.max(1, window)
        self.inbox = js.client.newInbox()
        let subscription = try await js.client.subscribe(to: inbox + ".*")
        self.subscription = subscription
        self.iterator = subscription.makeAsyncIterator()
        self.watchdog = ProgressWatchdog(watching: subscription, limit: js.timeout)
    }

    deinit {
        watchdog.cancel()
        try? js.client.unsubscribe(subscription, after: nil)
    }

    /// Publishes one message, first waiting for acks while the window is full.
    mutating func publish(_ payload: UnsafeRawBufferPointer, to subject: String, headers: NATSHeaders? = nil) async throws {
        while sent - acked >= UInt64(window) {
            try await receiveAck()
        }
        sent += 1
        subjects[sent] = subject
        watchdog.expecting(true)
        let mustWait = try js.client.enqueuePublish(
            subject: subject, replyTo: "\(inbox).\(sent)", headers: headers, payload: payload)
        if mustWait { try await js.client.waitForOutboundSpace() }
    }

    /// Waits for every outstanding ack; throws the first failure.
    mutating func finish() async throws {
        while acked < sent {
            try await receiveAck()
        }
    }

    private mutating func receiveAck() async throws {
        guard let message = await iterator.next() else {
            if watchdog.timedOut {
                throw NATSError.timeout(
                    operation: "JetStream acknowledgement of a publish to '\(subjects.values.first ?? inbox)'",
                    seconds: Double(js.timeout.nanoseconds) / 1e9)
            }
            throw NATSError.connectionClosed
        }
        acked += 1
        watchdog.progressed()
        if acked == sent { watchdog.expecting(false) }
        let token = UInt64(message.subject.split(separator: ".").last ?? "") ?? 0
        let subject = subjects.removeValue(forKey: token) ?? message.subject
        if message.status == 503 {
            throw JetStreamError.notAvailable(subject, "no stream listens on this subject")
        }
        _ = try JetStreamJSON.decodeReply(PubAck.self, from: message, subject: subject)
    }
}
