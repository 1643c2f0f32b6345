import FoundationEssentials
import NIOCore
import Synchronization

/// An ordered consumer: the messages of a stream (optionally of one filter subject), in stream
/// order, exactly once, as an `AsyncSequence`.
///
/// It is an ephemeral push consumer (no acks, memory storage, one replica) with flow control and
/// idle heartbeats. Flow-control requests are answered as the sequence is consumed, so a slow
/// reader slows the server down instead of piling messages up. When a delivery is missing (a
/// consumer sequence gap, a heartbeat that names a later sequence, or heartbeats that stop
/// coming) the consumer is deleted and created again from the next stream sequence.
///
/// ```swift
/// let consumer = try await js.orderedConsumer(stream: "ORDERS", filterSubject: "orders.eu.>")
/// for try await message in consumer {
///     print(message.streamSequence, message.string)
///     if message.pending == 0 { break }
/// }
/// await consumer.stop()
/// ```
///
/// One task should iterate it. The sequence ends after ``stop()``; it throws when the consumer
/// cannot be created again (the stream was deleted, say) or the client is closed.
public final class OrderedConsumer: AsyncSequence, Sendable {
    /// The consumer yields the stream's messages, in stream order.
    public typealias Element = JetStreamMessage
    /// Iteration throws when the consumer cannot be created again or the client is closed.
    public typealias Failure = any Error

    /// The stream consumed.
    public let stream: String
    /// The subject filter, if any.
    public let filterSubject: String?
    /// Where the first consumer started.
    public let deliverPolicy: DeliverPolicy
    /// Whether only headers are delivered (the payload size is in `Nats-Msg-Size`).
    public let headersOnly: Bool
    /// The idle heartbeat interval; missing three heartbeats restarts the consumer.
    public let idleHeartbeat: Duration

    let js: JetStreamContext
    private let state: Mutex<State>
    private let initial: Mutex<UInt64?> = Mutex(nil)

    private struct State {
        var subscription: NATSSubscription?
        var consumerName: String?
        var generation = 0
        /// The stream sequence of the last message handed out (or the start point of a `new` consumer).
        var lastStreamSequence: UInt64 = 0
        var lastConsumerSequence: UInt64 = 0
        var lastActivity = ContinuousClock.now
        var stalled = false
        var stopped = false
        var restarts = 0
        var watchdog: Task<Void, Never>?
    }

    /// Creates the first consumer. Use ``JetStreamContext/orderedConsumer(stream:filterSubject:deliverPolicy:headersOnly:idleHeartbeat:)``.
    init(
        js: JetStreamContext, stream: String, filterSubject: String?, deliverPolicy: DeliverPolicy,
        headersOnly: Bool, idleHeartbeat: Duration
    ) {
        self.js = js
        self.stream = stream
        self.filterSubject = filterSubject
        self.deliverPolicy = deliverPolicy
        self.headersOnly = headersOnly
        self.idleHeartbeat = idleHeartbeat
        self.state = Mutex(State())
    }

    deinit {
        let (subscription, name, watchdog) = state.withLock { s in (s.subscription, s.consumerName, s.watchdog) }
        watchdog?.cancel()
        if let subscription {
            try? js.client.unsubscribe(subscription, after: nil)
            if let name, js.client.isConnected {
                let js = self.js, stream = self.stream
                // Unstructured on purpose: a deinit cannot await. The task is one request,
                // bounded by the request timeout, and fails at once if the client closes (its
                // pending requests fail with `connectionClosed`); the server would also drop
                // the ephemeral consumer after its inactivity threshold.
                Task { try? await js.deleteConsumer(stream: stream, consumer: name) }
            }
        }
    }

    /// Messages pending for the first consumer when it was created: the size of the backlog
    /// this sequence starts with (0 when there is nothing to deliver yet).
    public var initialPending: UInt64 { initial.withLock { $0 ?? 0 } }

    /// How many times the consumer was created again after a gap or a stall.
    public var restarts: Int { state.withLock { $0.restarts } }

    /// Stops the sequence (it ends after the message being handled) and deletes the consumer.
    public func stop() async {
        let (subscription, name, watchdog) = state.withLock { s in
            s.stopped = true
            defer {
                s.subscription = nil
                s.consumerName = nil
                s.watchdog = nil
            }
            return (s.subscription, s.consumerName, s.watchdog)
        }
        watchdog?.cancel()
        try? await subscription?.unsubscribe()
        if let name { try? await js.deleteConsumer(stream: stream, consumer: name) }
    }

    // MARK: Creating consumers

    private struct CreateRequest: Encodable {
        struct Config: Encodable {
            var deliverSubject: String
            var deliverPolicy: String
            var startSequence: UInt64?
            var ackPolicy = "none"
            var maxDeliver = 1
            var filterSubject: String?
            var flowControl = true
            var idleHeartbeat: Int64
            var headersOnly: Bool?
            var memoryStorage = true
            var replicas = 1
            var inactiveThreshold: Int64
            var replayPolicy = "instant"

            enum CodingKeys: String, CodingKey {
                case deliverSubject = "deliver_subject", deliverPolicy = "deliver_policy"
                case startSequence = "opt_start_seq", ackPolicy = "ack_policy", maxDeliver = "max_deliver"
                case filterSubject = "filter_subject", flowControl = "flow_control", idleHeartbeat = "idle_heartbeat"
                case headersOnly = "headers_only", memoryStorage = "mem_storage", replicas = "num_replicas"
                case inactiveThreshold = "inactive_threshold", replayPolicy = "replay_policy"
            }
        }

        var streamName: String
        var config: Config

        enum CodingKeys: String, CodingKey { case streamName = "stream_name", config }
    }

    private struct ConsumerInfo: Decodable {
        struct Delivered: Decodable {
            var streamSequence: UInt64?
            enum CodingKeys: String, CodingKey { case streamSequence = "stream_seq" }
        }
        var name: String
        var numPending: UInt64?
        var delivered: Delivered?
        enum CodingKeys: String, CodingKey { case name, numPending = "num_pending", delivered }
    }

    /// Subscribes a fresh inbox, then creates a consumer delivering to it.
    func start(_ policy: DeliverPolicy) async throws {
        let inbox = js.client.newInbox()
        let subscription = try await js.client.subscribe(to: inbox)
        let request = CreateRequest(streamName: stream, config: .init(
            deliverSubject: inbox, deliverPolicy: policy.wireName, startSequence: policy.startSequence,
            filterSubject: filterSubject, idleHeartbeat: idleHeartbeat.nanoseconds,
            headersOnly: headersOnly ? true : nil,
            inactiveThreshold: Swift.max(idleHeartbeat * 6, .seconds(30)).nanoseconds))
        let info: ConsumerInfo
        do {
            info = try await js.apiRequest("CONSUMER.CREATE.\(stream)", body: request)
        } catch {
            try? await subscription.unsubscribe()
            throw error
        }
        initial.withLock { pending in
            if pending == nil { pending = info.numPending ?? 0 }
        }
        let obsolete: NATSSubscription? = state.withLock { s in
            guard !s.stopped else { return subscription }
            s.subscription = subscription
            s.consumerName = info.name
            s.generation += 1
            s.lastConsumerSequence = 0
            s.stalled = false
            s.lastActivity = .now
            if case .new = policy, s.lastStreamSequence == 0 {
                s.lastStreamSequence = info.delivered?.streamSequence ?? 0
            }
            if s.watchdog == nil { s.watchdog = startWatchdog() }
            return nil
        }
        if let obsolete {
            try? await obsolete.unsubscribe()
            try? await js.deleteConsumer(stream: stream, consumer: info.name)
        }
    }

    /// Replaces the consumer of `generation` with one that starts after the last message handed out.
    /// Transient failures (timeouts, a server restarting) are retried until ``stop()``.
    func restart(after generation: Int) async throws {
        let replaced: (NATSSubscription?, String?, DeliverPolicy)? = state.withLock { s in
            guard !s.stopped, s.generation == generation else { return nil }
            s.restarts += 1
            defer {
                s.subscription = nil
                s.consumerName = nil
            }
            let policy: DeliverPolicy = s.lastStreamSequence > 0 ? .byStartSequence(s.lastStreamSequence + 1) : deliverPolicy
            return (s.subscription, s.consumerName, policy)
        }
        guard let (subscription, name, policy) = replaced else { return }
        try? await subscription?.unsubscribe()
        // Awaited here (one round trip on a rare path) rather than left to a task of its own.
        if let name { try? await js.deleteConsumer(stream: stream, consumer: name) }
        var delay = Duration.milliseconds(100)
        while !state.withLock({ $0.stopped }) {
            do {
                try await start(policy)
                return
            } catch let error as JetStreamError where error.kind == .api {
                throw error
            } catch NATSError.Code.connectionClosed {
                throw NATSError.connectionClosed
            } catch {
                try await Task.sleep(for: delay)
                delay = Swift.min(delay * 2, .seconds(2))
            }
        }
    }

    /// Ends the current subscription when no message (not even a heartbeat) came for three
    /// heartbeat intervals; the iterator then restarts the consumer.
    ///
    /// The task is owned by this sequence: it is kept in the state, cancelled by `stop()` and in
    /// `deinit`, and holds only a weak reference, so it never outlives its owner
    /// by more than one tick.
    private func startWatchdog() -> Task<Void, Never> {
        let interval = idleHeartbeat
        return Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self else { return }
                let stalled: NATSSubscription? = self.state.withLock { s in
                    guard !s.stopped, !s.stalled, let subscription = s.subscription else { return nil }
                    if subscription.pendingMessages > 0 {
                        s.lastActivity = .now
                        return nil
                    }
                    guard s.lastActivity.duration(to: .now) > interval * 3 else { return nil }
                    s.stalled = true
                    return subscription
                }
                try? await stalled?.unsubscribe()
            }
        }
    }

    // MARK: Handling deliveries

    enum Action {
        case deliver(JetStreamMessage)
        case ignore
        case reply(String)
        case restart
    }

    func handle(_ message: NATSMessage, generation: Int) -> Action {
        state.withLock { s in
            guard s.generation == generation, !s.stopped else { return .ignore }
            s.lastActivity = .now
            if let status = message.status {
                guard status == 100 else { return .restart }  // 409 consumer deleted, 404, 408...
                if let reply = message.replyTo, !reply.isEmpty { return .reply(reply) }  // flow control
                if let last = message.headers?["Nats-Last-Consumer"].flatMap({ UInt64($0) }),
                   last != s.lastConsumerSequence
                {
                    return .restart
                }
                if let stalled = message.headers?["Nats-Consumer-Stalled"], !stalled.isEmpty { return .reply(stalled) }
                return .ignore
            }
            guard let delivered = JetStreamMessage(message) else { return .ignore }
            guard delivered.consumerSequence == s.lastConsumerSequence + 1 else { return .restart }
            s.lastConsumerSequence = delivered.consumerSequence
            s.lastStreamSequence = delivered.streamSequence
            return .deliver(delivered)
        }
    }

    enum Ended {
        case stopped
        case resume
        case restart
        case closed
    }

    func subscriptionEnded(generation: Int) -> Ended {
        state.withLock { s in
            if s.stopped { return .stopped }
            if s.generation != generation { return .resume }
            return s.stalled ? .restart : .closed
        }
    }

    func current() -> (NATSSubscription, Int)? {
        state.withLock { s in
            guard !s.stopped, let subscription = s.subscription else { return nil }
            return (subscription, s.generation)
        }
    }

    var isStopped: Bool { state.withLock { $0.stopped } }

    // MARK: AsyncSequence

    /// An iterator over the stream's messages.
    public func makeAsyncIterator() -> Iterator {
        Iterator(consumer: self)
    }

    /// Iterates the consumer; answers flow control and restarts the consumer as needed.
    public struct Iterator: AsyncIteratorProtocol {
        /// A message of the stream.
        public typealias Element = JetStreamMessage
        /// Any error that ends the consumer.
        public typealias Failure = any Error

        let consumer: OrderedConsumer
        var inner: NATSSubscription.Iterator?
        var generation = 0

        /// The next message in stream order; nil once the consumer is stopped.
        public mutating func next() async throws -> JetStreamMessage? {
            try await next(isolation: nil)
        }

        /// The next message in stream order, on `actor`; nil once the consumer is stopped.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> JetStreamMessage? {
            while true {
                if inner == nil {
                    guard let (subscription, generation) = consumer.current() else {
                        if consumer.isStopped { return nil }
                        throw NATSError.connectionClosed
                    }
                    inner = subscription.makeAsyncIterator()
                    self.generation = generation
                }
                guard let message = await inner!.next(isolation: actor) else {
                    inner = nil
                    switch consumer.subscriptionEnded(generation: generation) {
                    case .stopped: return nil
                    case .resume: continue
                    case .restart: try await consumer.restart(after: generation)
                    case .closed:
                        if Task.isCancelled { throw CancellationError() }
                        throw NATSError.connectionClosed
                    }
                    continue
                }
                switch consumer.handle(message, generation: generation) {
                case .deliver(let delivered):
                    return delivered
                case .ignore:
                    continue
                case .reply(let subject):
                    try? await consumer.js.client.publish(ByteBuffer(), to: subject)
                case .restart:
                    inner = nil
                    try await consumer.restart(after: generation)
                }
            }
        }
    }
}
