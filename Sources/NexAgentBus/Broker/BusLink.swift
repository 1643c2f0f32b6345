import NATSWire
import NIOCore
import Synchronization

/// The node's own connection to its ``AgentBus``, in process: no socket, no protocol
/// encoding, no thread hop when the caller runs on the bus's event loop.
///
/// It is a trusted peer of the bus (like a connection of a user with
/// ``BusPermissions/everything``): it may publish and subscribe anywhere, is never cut off, and
/// when a consumer of one of its subscriptions falls behind (more than
/// ``BusLimits/maxPendingBytes`` queued), the bus stops reading from every agent until it has
/// caught up. Nothing is dropped.
///
/// ```swift
/// let link = try await bus.link()
/// let handshakes = try await link.subscribe(to: "hostint.*.handshake")
/// let reply = try await link.request(ByteBuffer(), to: "agentint.\(id).ping", timeout: .seconds(1))
/// ```
public final class BusLink: Sendable {
    /// The bus's event loop: work started there reaches the bus without a thread hop.
    public let eventLoop: any EventLoop
    /// Runs tasks on ``eventLoop`` (`Task(executorPreference: link.taskExecutor)`).
    public let taskExecutor: EventLoopTaskExecutor
    /// The largest payload (headers included) the bus carries.
    public let maxPayload: Int
    private let peer: BusLinkPeer
    private let nextToken = Atomic<Int>(0)

    /// On the bus's event loop: a link registered with `router`.
    init(router: BusRouter) {
        router.eventLoop.preconditionInEventLoop()
        eventLoop = router.eventLoop
        taskExecutor = EventLoopTaskExecutor(router.eventLoop)
        maxPayload = router.limits.maxPayload
        peer = BusLinkPeer(router: router)
        peer.open()
    }

    /// Subscribes to `pattern` (wildcards allowed). Messages queue without limit of count; past
    /// ``BusLimits/maxPendingBytes`` of queued payload the bus pauses its agents instead.
    public func subscribe(to pattern: String) async throws -> BusLinkSubscription {
        guard SubjectPattern.isValidPattern(pattern) else { throw NATSError.invalidSubject(pattern, reason: "not a valid subject pattern") }
        let peer = self.peer
        return try await onLoop { () throws(NATSError) in try peer.subscribe(to: pattern) }
    }

    /// Publishes a message; it is routed (and written to the agents' sockets) before this returns
    /// when called on ``eventLoop``, else soon after on it.
    public func publish(_ payload: ByteBuffer, to subject: String, headers: NATSHeaders? = nil) throws {
        try validate(subject, payload: payload, headers: headers)
        let peer = self.peer
        run { peer.publish(subject: subject, replyTo: nil, headers: headers, payload: payload) }
    }

    /// Publishes bytes. See ``publish(_:to:headers:)-(ByteBuffer,_,_)``.
    public func publish(_ payload: [UInt8], to subject: String, headers: NATSHeaders? = nil) throws {
        try publish(ByteBuffer(bytes: payload), to: subject, headers: headers)
    }

    /// Sends a request and waits for the first reply. Throws ``NATSError/noResponders(subject:)``
    /// when nobody subscribes to `subject`, ``NATSError/timeout(operation:seconds:)`` when no reply
    /// comes within `timeout`, ``NATSError/connectionClosed`` when the bus shuts down.
    public func request(_ payload: ByteBuffer, to subject: String, headers: NATSHeaders? = nil,
                        timeout: Duration) async throws -> NATSMessage {
        try validate(subject, payload: payload, headers: headers)
        let token = nextToken.add(1, ordering: .relaxed).newValue
        let peer = self.peer
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<NATSMessage, any Error>) in
                run {
                    peer.request(token: token, subject: subject, headers: headers, payload: payload,
                                 timeout: timeout, continuation: continuation)
                }
            }
        } onCancel: {
            run { peer.cancelRequest(token: token) }
        }
    }

    /// Ends every subscription (their sequences finish once drained) and fails pending requests.
    public func close() async {
        let peer = self.peer
        await onLoop { peer.close() }
    }

    private func validate(_ subject: String, payload: ByteBuffer, headers: NATSHeaders?) throws {
        guard SubjectPattern.isValidPublishSubject(subject) else {
            throw NATSError.invalidSubject(subject, reason: "not a valid publish subject")
        }
        if let headers { try headers.validate() }
        let size = payload.readableBytes + (headers?.encodedSize ?? 0)
        guard size <= maxPayload else { throw NATSError.payloadTooLarge(size: size, maxPayload: maxPayload) }
    }

    private func run(_ body: @escaping @Sendable () -> Void) {
        if eventLoop.inEventLoop { body() } else { eventLoop.execute(body) }
    }

    private func onLoop<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        if eventLoop.inEventLoop { return try body() }
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            eventLoop.execute {
                do throws(E) { continuation.resume(returning: .success(try body())) } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}

/// Messages of one ``BusLink`` subscription, in order. Ends when the link or the bus closes
/// (after the queued messages) or when ``unsubscribe()`` is called.
public final class BusLinkSubscription: AsyncSequence, Sendable {
    public typealias Element = NATSMessage
    public typealias Failure = Never

    /// The pattern subscribed.
    public let subject: String
    let buffer: BusLinkBuffer
    private let unsubscribeAction: @Sendable () -> Void

    init(subject: String, buffer: BusLinkBuffer, unsubscribe: @escaping @Sendable () -> Void) {
        self.subject = subject
        self.buffer = buffer
        self.unsubscribeAction = unsubscribe
    }

    /// Stops the subscription; what is queued is still delivered, then the sequence ends.
    public func unsubscribe() {
        unsubscribeAction()
    }

    public func makeAsyncIterator() -> Iterator { Iterator(buffer: buffer) }

    public struct Iterator: AsyncIteratorProtocol {
        let buffer: BusLinkBuffer
        var batch: [NATSMessage] = []
        var index = 0

        public mutating func next() async -> NATSMessage? {
            await next(isolation: nil)
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> NATSMessage? {
            if index == batch.count {
                batch = await buffer.take()
                index = 0
                if batch.isEmpty { return nil }
            }
            defer { index += 1 }
            return batch[index]
        }
    }
}

/// The queue between the bus's event loop and one link subscription's consumer. The consumer
/// takes everything queued in one swap; the loop learns (through `drained`) when a consumer
/// that had fallen behind has caught up.
final class BusLinkBuffer: Sendable {
    private struct State: ~Copyable {
        var items: [NATSMessage] = []
        var bytes = 0
        var finished = false
        var waiter: CheckedContinuation<[NATSMessage], Never>?
        /// Set once `bytes` passed the high-water mark; cleared when the consumer takes.
        var behind = false
    }

    private let state = Mutex(State())
    private let highWater: Int

    /// Payload bytes queued for the consumer.
    var queuedBytes: Int { state.withLock { $0.bytes } }
    private let drained: @Sendable () -> Void

    init(highWater: Int, drained: @escaping @Sendable () -> Void) {
        self.highWater = max(1, highWater)
        self.drained = drained
    }

    /// Queues a message (on the loop). Returns whether the consumer waits (``signal()`` is owed)
    /// and whether the queue just passed its high-water mark.
    func push(_ message: NATSMessage) -> (wake: Bool, fellBehind: Bool) {
        state.withLock { s in
            guard !s.finished else { return (false, false) }
            s.items.append(message)
            s.bytes += message.payload.readableBytes
            let fellBehind = !s.behind && s.bytes > highWater
            if fellBehind { s.behind = true }
            return (s.waiter != nil, fellBehind)
        }
    }

    /// Hands everything queued to a waiting consumer, if one waits.
    func signal() {
        let handoff: (CheckedContinuation<[NATSMessage], Never>, [NATSMessage], Bool)? = state.withLock { s in
            guard let waiter = s.waiter, !s.items.isEmpty else { return nil }
            s.waiter = nil
            return (waiter, Self.drain(&s), Self.caughtUp(&s))
        }
        guard let (waiter, batch, caughtUp) = handoff else { return }
        waiter.resume(returning: batch)
        if caughtUp { drained() }
    }

    /// Ends the sequence once the queued messages are consumed.
    func finish() {
        let handoff: (CheckedContinuation<[NATSMessage], Never>, [NATSMessage])? = state.withLock { s in
            s.finished = true
            guard let waiter = s.waiter else { return nil }
            s.waiter = nil
            return (waiter, Self.drain(&s))
        }
        if let (waiter, batch) = handoff { waiter.resume(returning: batch) }
    }

    /// Everything queued, waiting for at least one message; empty when the sequence ended (or the
    /// waiting task was cancelled).
    func take() async -> [NATSMessage] {
        let now: ([NATSMessage], Bool)? = state.withLock { s in
            guard !s.items.isEmpty || s.finished else { return nil }
            return (Self.drain(&s), Self.caughtUp(&s))
        }
        if let (batch, caughtUp) = now {
            if caughtUp { drained() }
            return batch
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[NATSMessage], Never>) in
                let immediate: [NATSMessage]? = state.withLock { s in
                    if !s.items.isEmpty || s.finished || Task.isCancelled { return Self.drain(&s) }
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

    private static func drain(_ s: inout State) -> [NATSMessage] {
        let batch = s.items
        s.items = []
        s.bytes = 0
        return batch
    }

    private static func caughtUp(_ s: inout State) -> Bool {
        defer { s.behind = false }
        return s.behind
    }
}

/// The router's side of a ``BusLink``: a trusted peer whose deliveries go to in-process
/// queues and pending requests. Confined to the bus's event loop, like ``BusRouter`` (``BusLink``
/// only calls it there).
final class BusLinkPeer: BusPeer, @unchecked Sendable {
    private struct PendingRequest {
        let subject: String
        let continuation: CheckedContinuation<NATSMessage, any Error>
        let deadline: NIODeadline
        let timeout: Duration
    }

    private let router: BusRouter
    let clientID: UInt64
    let echo = false
    let wantsNoResponders = true
    let isTrusted = true
    var isDirty = false
    private var isOpen = false
    private var flushScheduled = false
    private var subscriptions: [String: (BusSubscription, BusLinkBuffer)] = [:]
    private var nextSID = 1
    /// Subscriptions with messages queued since the last flush.
    private var toSignal: [BusLinkBuffer] = []
    /// Subscriptions (sids) whose queue is past its high-water mark.
    private var behind: Set<String> = []
    private let inbox = "_INBOX.nexnode." + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    private var requests: [Int: PendingRequest] = [:]
    /// One timer for every pending request, due at the earliest deadline (not one per
    /// request: scheduling and cancelling a timer per invocation was a cost of the hot path).
    private var sweep: (due: NIODeadline, timer: Scheduled<Void>)?
    /// Which sweep is current: a timer already due in this pass of the loop runs even when
    /// cancelled, and must then do nothing.
    private var sweepGeneration = 0
    /// Requests cancelled before they were sent (each is removed when its request starts).
    private var cancelled: Set<Int> = []
    /// The highest request token started: a cancellation for one at or below it that is not
    /// pending came after its answer and is ignored.
    private var highestStarted = 0
    private static let inboxSID = "inbox"

    init(router: BusRouter) {
        self.router = router
        self.clientID = router.makeClientID()
    }

    private func preconditionOnLoop() { router.eventLoop.preconditionInEventLoop() }

    func open() {
        guard !isOpen, !router.isShuttingDown else { return }
        isOpen = true
        router.register(self)
        router.add(BusSubscription(pattern: inbox + ".*", queue: nil, sid: Self.inboxSID, client: self))
    }

    func subscribe(to pattern: String) throws(NATSError) -> BusLinkSubscription {
        guard isOpen else { throw NATSError.connectionClosed }
        let sid = String(nextSID)
        nextSID += 1
        let loop = router.eventLoop
        let buffer = BusLinkBuffer(highWater: router.limits.maxPendingBytes) { [self] in
            loop.execute { self.caughtUp(sid: sid) }
        }
        let subscription = BusSubscription(pattern: pattern, queue: nil, sid: sid, client: self)
        subscriptions[sid] = (subscription, buffer)
        router.add(subscription)
        return BusLinkSubscription(subject: pattern, buffer: buffer) { [self] in
            loop.execute { self.unsubscribe(sid: sid) }
        }
    }

    private func unsubscribe(sid: String) {
        guard let (subscription, buffer) = subscriptions.removeValue(forKey: sid) else { return }
        router.remove(subscription)
        buffer.finish()
        caughtUp(sid: sid)
    }

    func publish(subject: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer) {
        guard isOpen else { return }
        router.route(subject: subject, replyTo: replyTo, headers: headers, payload: payload, from: self)
        // Written at the end of this pass of the event loop: what the node sends in one pass
        // (the invocations of one read from NATS) goes to each agent in one write.
        guard !flushScheduled else { return }
        flushScheduled = true
        router.eventLoop.execute { [self] in
            flushScheduled = false
            router.flushDirty()
        }
    }

    func request(token: Int, subject: String, headers: NATSHeaders?, payload: ByteBuffer, timeout: Duration,
                 continuation: CheckedContinuation<NATSMessage, any Error>) {
        highestStarted = max(highestStarted, token)
        if cancelled.remove(token) != nil {
            continuation.resume(throwing: CancellationError())
            return
        }
        guard isOpen else {
            continuation.resume(throwing: NATSError.connectionClosed)
            return
        }
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        requests[token] = PendingRequest(subject: subject, continuation: continuation, deadline: deadline, timeout: timeout)
        if sweep == nil || deadline < sweep!.due { scheduleSweep(at: deadline) }
        publish(subject: subject, replyTo: "\(inbox).\(String(token, radix: 36))", headers: headers, payload: payload)
    }

    private func scheduleSweep(at due: NIODeadline) {
        sweep?.timer.cancel()
        sweepGeneration += 1
        let generation = sweepGeneration
        sweep = (due, router.eventLoop.scheduleTask(deadline: due) { [self] in
            guard generation == sweepGeneration else { return }
            sweep = nil
            timeOutExpiredRequests()
        })
    }

    /// Fails the requests past their deadline and sets the timer for the next one.
    private func timeOutExpiredRequests() {
        let now = NIODeadline.now()
        var next: NIODeadline?
        for (token, request) in requests {
            if request.deadline <= now {
                let seconds = Double(request.timeout.components.seconds) + Double(request.timeout.components.attoseconds) / 1e18
                complete(token, with: .failure(NATSError.timeout(operation: "request to '\(request.subject)'", seconds: seconds)))
            } else if next == nil || request.deadline < next! {
                next = request.deadline
            }
        }
        if let next { scheduleSweep(at: next) }
    }

    func cancelRequest(token: Int) {
        if requests[token] != nil {
            complete(token, with: .failure(CancellationError()))
        } else if token > highestStarted {
            cancelled.insert(token)
        }
    }

    private func complete(_ token: Int, with result: Result<NATSMessage, any Error>) {
        guard let request = requests.removeValue(forKey: token) else { return }
        if case .success(let message) = result, message.status == 503, message.payload.readableBytes == 0 {
            request.continuation.resume(throwing: NATSError.noResponders(subject: request.subject))
        } else {
            request.continuation.resume(with: result)
        }
    }

    // MARK: BusPeer

    func deliver(subject: String, sid: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer) -> Bool {
        guard isOpen else { return false }
        if sid == Self.inboxSID {
            // A reply subject that is not one of ours (an agent may only answer those it was
            // given, but the link checks anyway) completes nothing.
            guard let token = Int(Substring(subject.utf8.dropFirst(inbox.utf8.count + 1)) ?? "", radix: 36) else { return true }
            complete(token, with: .success(NATSMessage(subject: subject, sid: 0, replyTo: replyTo, headers: headers,
                                                       payload: payload)))
            return true
        }
        guard let (_, buffer) = subscriptions[sid] else { return false }
        let (wake, fellBehind) = buffer.push(NATSMessage(subject: subject, sid: Int(sid) ?? 0, replyTo: replyTo,
                                                         headers: headers, payload: payload))
        if wake { toSignal.append(buffer) }
        if fellBehind {
            behind.insert(sid)
            router.trustedWritabilityChanged(self, isWritable: false)
        }
        return true
    }

    func flush() {
        let buffers = toSignal
        toSignal.removeAll(keepingCapacity: true)
        for buffer in buffers { buffer.signal() }
    }

    /// Payload bytes queued in the link's subscriptions.
    var queuedBytes: Int { subscriptions.values.reduce(0) { $0 + $1.1.queuedBytes } }

    func forget(_ subscription: BusSubscription) {
        if let (held, buffer) = subscriptions[subscription.sid], held === subscription {
            subscriptions[subscription.sid] = nil
            buffer.finish()
        }
    }

    /// Subscription `sid`'s consumer took its queue (or it ended): agents may publish again
    /// once no subscription of the link is behind.
    private func caughtUp(sid: String) {
        guard behind.remove(sid) != nil, behind.isEmpty else { return }
        router.trustedWritabilityChanged(self, isWritable: true)
    }

    /// Ends every subscription and fails pending requests.
    func close() {
        guard isOpen else { return }
        isOpen = false
        for (_, buffer) in subscriptions.values { buffer.finish() }
        subscriptions.removeAll()
        behind.removeAll()
        toSignal.removeAll()
        for token in Array(requests.keys) { complete(token, with: .failure(NATSError.connectionClosed)) }
        sweep?.timer.cancel()
        sweep = nil
        sweepGeneration += 1
        router.unregister(self)
    }
}
