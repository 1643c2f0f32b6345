import NIOCore

/// Reads the messages on one subject of a stream, in order, through an ephemeral pull consumer
/// (no acks, memory storage), a bounded batch at a time.
///
/// At most two batches are requested ahead of the reader, so memory stays near
/// `2 × batch × message size` however much is read; this is what keeps object reads streamed.
/// A gap in the consumer sequence or a vanished consumer (a server restart) recreates the
/// consumer from the next stream sequence. Used by one task; call ``close()`` when done.
struct PullReader: ~Copyable {
    let js: JetStreamContext
    let stream: String
    let filterSubject: String
    let batch: Int
    /// Messages pending for the consumer when it was created.
    let initialPending: UInt64
    private let inbox: String
    private let subscription: NATSSubscription
    private var iterator: NATSSubscription.Iterator
    private let watchdog: ProgressWatchdog
    private var consumer: String
    private var lastStreamSequence: UInt64 = 0
    private var lastConsumerSequence: UInt64 = 0
    private var outstanding = 0
    private var restarts = 0
    private var finished = false

    private struct CreateRequest: Encodable {
        struct Config: Encodable {
            var deliverPolicy: String
            var startSequence: UInt64?
            var ackPolicy = "none"
            var filterSubject: String
            var memoryStorage = true
            var replicas = 1
            var inactiveThreshold: Int64

            enum CodingKeys: String, CodingKey {
                case deliverPolicy = "deliver_policy", startSequence = "opt_start_seq", ackPolicy = "ack_policy"
                case filterSubject = "filter_subject", memoryStorage = "mem_storage", replicas = "num_replicas"
                case inactiveThreshold = "inactive_threshold"
            }
        }
        var streamName: String
        var config: Config
        enum CodingKeys: String, CodingKey { case streamName = "stream_name", config }
    }

    private struct ConsumerInfo: Decodable {
        var name: String
        var numPending: UInt64?
        enum CodingKeys: String, CodingKey { case name, numPending = "num_pending" }
    }

    private struct NextRequest: Encodable {
        var batch: Int
        var expires: Int64
    }

    init(js: JetStreamContext, stream: String, filterSubject: String, batch: Int) async throws {
        let inbox = js.client.newInbox()
        let subscription = try await js.client.subscribe(to: inbox)
        let watchdog = ProgressWatchdog(watching: subscription, limit: js.timeout * 2)
        let info: ConsumerInfo
        do {
            info = try await Self.createConsumer(js, stream: stream, filterSubject: filterSubject, from: nil)
        } catch {
            watchdog.cancel()
            try? await subscription.unsubscribe()
            throw error
        }
        self.js = js
        self.stream = stream
        self.filterSubject = filterSubject
        self.batch = Swift.max(1, batch)
        self.inbox = inbox
        self.subscription = subscription
        self.iterator = subscription.makeAsyncIterator()
        self.watchdog = watchdog
        self.consumer = info.name
        self.initialPending = info.numPending ?? 0
        self.finished = initialPending == 0
    }

    deinit {
        watchdog.cancel()
        try? js.client.unsubscribe(subscription, after: nil)
    }

    private static func createConsumer(
        _ js: JetStreamContext, stream: String, filterSubject: String, from sequence: UInt64?
    ) async throws -> ConsumerInfo {
        let request = CreateRequest(streamName: stream, config: .init(
            deliverPolicy: sequence == nil ? "all" : "by_start_sequence", startSequence: sequence,
            filterSubject: filterSubject, inactiveThreshold: Duration.seconds(30).nanoseconds))
        return try await js.apiRequest("CONSUMER.CREATE.\(stream)", body: request)
    }

    /// The next message, nil once the last one pending is delivered (or nothing was pending).
    mutating func next() async throws -> JetStreamMessage? {
        while !finished {
            if outstanding <= batch { try await requestBatch() }
            guard let message = await iterator.next() else {
                if watchdog.timedOut {
                    throw NATSError.timeout(
                        operation: "reading '\(filterSubject)' from stream \(stream)",
                        seconds: Double(watchdog.limit.components.seconds))
                }
                throw NATSError.connectionClosed
            }
            watchdog.progressed()
            if let status = message.status {
                switch status {
                case 100:
                    continue
                case 404, 408:
                    outstanding = 0  // a request ended unfulfilled: ask again
                default:
                    try await restart()  // 409 consumer deleted, 503 consumer gone...
                }
                continue
            }
            guard let delivered = JetStreamMessage(message), delivered.consumer == consumer else { continue }
            outstanding = Swift.max(0, outstanding - 1)
            guard delivered.consumerSequence == lastConsumerSequence + 1 else {
                try await restart()
                continue
            }
            lastConsumerSequence = delivered.consumerSequence
            lastStreamSequence = delivered.streamSequence
            restarts = 0
            if delivered.pending == 0 {
                finished = true
                watchdog.expecting(false)
            }
            return delivered
        }
        return nil
    }

    /// Deletes the consumer and ends the subscription.
    consuming func close() async {
        watchdog.cancel()
        try? await subscription.unsubscribe()
        try? await js.deleteConsumer(stream: stream, consumer: consumer)
    }

    private mutating func requestBatch() async throws {
        let body = try JetStreamJSON.encode(NextRequest(batch: batch, expires: Duration.seconds(10).nanoseconds))
        watchdog.expecting(true)
        try await js.client.publish(body, to: js.apiSubject("CONSUMER.MSG.NEXT.\(stream).\(consumer)"), replyTo: inbox)
        outstanding += batch
    }

    private mutating func restart() async throws {
        restarts += 1
        guard restarts <= 5 else {
            throw JetStreamError.invalidReply(stream, "the consumer reading '\(filterSubject)' keeps failing")
        }
        // Awaited here (one round trip on a rare path) rather than left to a task of its own.
        try? await js.deleteConsumer(stream: stream, consumer: consumer)
        try await Task.sleep(for: .milliseconds(50 * restarts))
        let info = try await Self.createConsumer(js, stream: stream, filterSubject: filterSubject, from: lastStreamSequence + 1)
        consumer = info.name
        lastConsumerSequence = 0
        outstanding = 0
        if info.numPending == 0 { finished = true }
    }
}
