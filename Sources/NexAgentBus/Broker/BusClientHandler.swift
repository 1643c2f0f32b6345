import FoundationEssentials
import NATSWire
import NIOCore

/// One connection to the bus: the server side of the NATS client protocol.
///
/// Runs on the bus's event loop. Before a valid nkey `CONNECT` nothing else is accepted: any
/// other operation gets `-ERR 'Authorization Violation'` and the connection is closed, and
/// the decoder then accepts no payload at all, so an unauthenticated peer can make the bus
/// hold one control line at most. Afterwards every `PUB` and `SUB` is checked against the
/// user's ``BusPermissions``. A permission error is reported with `-ERR` and the connection
/// stays up, as nats-server does; protocol errors and failed authentication close it.
///
/// Every write to the client goes through one place, which closes an untrusted client whose
/// output queue (NIO's pending bytes, against the channel's write-buffer water mark) is past
/// its limit. Reads are gated (``ReadGate``): the handler holds NIO's read requests while its
/// user is over its publish budget or a trusted connection is behind.
final class BusClientHandler: ChannelDuplexHandler, BusPeer {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let router: BusRouter
    private var reader: FrameReader<ClientOpDecoder>
    /// Before authentication: no payload, a control line at most.
    private var preAuthDecoder: ClientOpDecoder
    private var preAuthTail: ByteBuffer?
    private var context: ChannelHandlerContext?
    private let nonce: String
    let clientID: UInt64
    private var authTimer: Scheduled<Void>?
    private(set) var userKey: String?
    /// Set once the router counted this connection for its user.
    private(set) var admittedUser: String?
    private var permissions: BusPermissions?
    /// Authenticated as a trusted user (the node's own).
    private(set) var isTrusted = false
    private(set) var echo = true
    private var verbose = false
    private var headersSupported = true
    /// Asked in CONNECT for a 503 status when a request has no responders.
    private(set) var wantsNoResponders = false
    private var subscriptions: [String: BusSubscription] = [:]
    /// Reply subjects this client may publish to once (requests delivered to it).
    private var responses: Set<String> = []
    private var responseOrder: [String] = []
    private static let responseLimit = 16_384
    private var closing = false
    /// The `-ERR` text the bus closed the connection with, if it did.
    private(set) var closeReason: String?
    private var gate = ReadGate()
    private var resumeTimer: Scheduled<Void>?
    /// Bytes this connection holds undecoded, as last reported to the router.
    private var reportedInput = 0
    /// What was written to the client since the last flush, in one buffer: NIO counts only
    /// the readable bytes of each write toward its water mark, so a 6-byte PONG written on its
    /// own would cost the process some 25 times what is counted.
    private var outbound: ByteBuffer?
    /// The current output limit: ``BusLimits/maxPendingBytesBeforeAuth``, then
    /// ``BusLimits/maxPendingBytes``.
    private var outputLimit: Int
    var isDirty = false

    init(router: BusRouter) {
        self.router = router
        self.reader = FrameReader(ClientOpDecoder(maxControlLine: router.limits.maxControlLine,
                                                  maxPayload: router.limits.maxPayload))
        self.preAuthDecoder = ClientOpDecoder(maxControlLine: router.limits.maxControlLine, maxPayload: 0)
        self.clientID = router.makeClientID()
        self.outputLimit = max(router.limits.maxPendingBytesBeforeAuth, 1)
        var random = SystemRandomNumberGenerator()
        self.nonce = String((0..<22).map { _ in Self.nonceAlphabet.randomElement(using: &random)! })
    }

    private static let nonceAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        guard router.register(self) else {
            close(error: "maximum connections exceeded")
            return
        }
        let info = ServerInfo(
            serverID: router.serverID, serverName: "nex-agent-bus", version: "2.10.0-nex", headers: true,
            maxPayload: router.limits.maxPayload, proto: 1, clientID: clientID, authRequired: true, nonce: nonce)
        write { try? $0.writeInfo(info) }
        flush()
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        authTimer = context.eventLoop.scheduleTask(in: TimeAmount(router.limits.authTimeout)) {
            handler.value.close(error: "Authentication Timeout")
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        authTimer?.cancel()
        resumeTimer?.cancel()
        preAuthTail = nil
        router.inputBuffered(changedBy: -reportedInput)  // whatever it held is freed with it
        reportedInput = 0
        router.unregister(self)
        subscriptions.removeAll()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var bytes = unwrapInboundIn(data)
        do {
            if permissions == nil {
                try readBeforeAuthentication(&bytes)
            }
            if permissions != nil, !closing, bytes.readableBytes > 0 {
                try reader.read(bytes) { op in handle(op) }
            }
        } catch let error as NATSProtocolError {
            if permissions == nil, case .payloadTooLarge = error.kind {  // a PUB before CONNECT
                router.countClosedBeforeAuthentication()
                close(error: "Authorization Violation")
            } else {
                close(error: Self.errorText(for: error))
            }
        } catch {
            close(error: "Protocol Error")
        }
        reportInput()
        router.flushDirty()
        throttleIfOverBudget()
    }

    /// Decodes up to and including `CONNECT`, leaving the rest in `bytes`. Holds back at most
    /// a partial control line: the decoder accepts no payload before authentication.
    private func readBeforeAuthentication(_ bytes: inout ByteBuffer) throws {
        if var tail = preAuthTail {
            preAuthTail = nil
            tail.writeBuffer(&bytes)
            bytes = tail
        }
        while permissions == nil, !closing, let op = try preAuthDecoder.decode(buffer: &bytes) {
            handle(op)
        }
        if permissions == nil, !closing, bytes.readableBytes > 0 {
            var copy = context?.channel.allocator.buffer(capacity: bytes.readableBytes) ?? ByteBuffer()
            copy.writeBuffer(&bytes)
            preAuthTail = copy
        }
    }

    private func reportInput() {
        guard context?.channel.isActive ?? false else { return }
        let now = reader.bufferedBytes + (preAuthTail?.readableBytes ?? 0)
        if now != reportedInput {
            router.inputBuffered(changedBy: now - reportedInput)
            reportedInput = now
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        router.flushDirty()
        flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if isTrusted { router.trustedWritabilityChanged(self, isWritable: context.channel.isWritable) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if closeReason == nil { closeReason = "\(error)" }
        close(error: nil)
    }

    // MARK: Flow control

    func read(context: ChannelHandlerContext) {
        if gate.readRequested() { context.read() }
    }

    /// Stops reading from this connection until ``resume(_:)`` ends the same reason.
    func pause(_ reason: ReadGate.Reasons) {
        gate.pause(reason)
    }

    func resume(_ reason: ReadGate.Reasons) {
        if gate.resume(reason), !closing { context?.read() }
    }

    /// After a read: when the user spent more than its budget, reads from this connection
    /// wait until the debt is repaid.
    private func throttleIfOverBudget() {
        guard let user = userKey, !isTrusted, !closing, !gate.reasons.contains(.rateLimited),
              let wait = router.publishWait(user: user), let context
        else { return }
        router.countThrottle()
        gate.pause(.rateLimited)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        resumeTimer = context.eventLoop.scheduleTask(in: wait) {
            handler.value.resumeAfterThrottle()
        }
    }

    private func resumeAfterThrottle() {
        resumeTimer = nil
        resume(.rateLimited)
    }

    /// Bytes written to this client that its socket has not taken yet.
    var pendingOutputBytes: Int {
        guard let channel = context?.channel else { return 0 }
        return (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }

    // MARK: Operations

    private func handle(_ op: ClientOp) {
        guard !closing else { return }
        guard let permissions else {
            if case .connect(let connect) = op {
                authenticate(connect)
            } else {
                router.countClosedBeforeAuthentication()
                close(error: "Authorization Violation")
            }
            return
        }
        switch op {
        case .connect:
            sendError("Connect already received")
        case .ping:
            write { $0.writePong() }
        case .pong:
            break
        case .pub(let subject, let replyTo, let headers, let payload):
            guard SubjectPattern.isValidPublishSubject(subject) else {
                sendError("Invalid Publish Subject")
                return
            }
            if let replyTo, !SubjectPattern.isValidPublishSubject(replyTo) {
                sendError("Invalid Publish Subject")
                return
            }
            // A reply subject must be one this user could receive on (its own inbox): otherwise
            // an agent could have the node answer into another agent's subjects.
            if let replyTo, !permissions.maySubscribe(replyTo) {
                sendError("Permissions Violation for Publish with Reply to \"\(replyTo)\"")
                return
            }
            guard permissions.mayPublish(subject) || useResponse(subject) else {
                sendError("Permissions Violation for Publish to \"\(subject)\"")
                return
            }
            okIfVerbose()
            if !isTrusted, let userKey {
                router.spend(user: userKey, bytes: payload.readableBytes + Self.size(of: headers))
            }
            router.route(subject: subject, replyTo: replyTo, headers: headers, payload: payload, from: self)
        case .sub(let pattern, let queue, let sid):
            guard SubjectPattern.isValidPattern(pattern), queue.map(SubjectPattern.isValidPublishSubject) ?? true else {
                sendError("Invalid Subject")
                return
            }
            guard permissions.maySubscribe(pattern) else {
                sendError("Permissions Violation for Subscription to \"\(pattern)\"")
                return
            }
            guard subscriptions[sid] == nil else {
                sendError("Duplicate Subscription ID \(sid)")
                return
            }
            guard subscriptions.count < router.limits.maxSubscriptionsPerConnection else {
                sendError("Maximum Subscriptions Exceeded")
                return
            }
            let subscription = BusSubscription(pattern: pattern, queue: queue, sid: sid, client: self)
            subscriptions[sid] = subscription
            router.add(subscription)
            okIfVerbose()
        case .unsub(let sid, let max):
            okIfVerbose()
            guard let subscription = subscriptions[sid] else { return }
            if let max, max > 0 {
                subscription.remaining = max  // counted from now; close enough to nats-server's total
                return
            }
            subscriptions[sid] = nil
            router.remove(subscription)
        }
    }

    private func authenticate(_ connect: ConnectInfo) {
        authTimer?.cancel()
        guard let key = connect.nkey, let signature = connect.sig, let granted = router.users[key],
              NKeyPair.verifyNonceSignature(publicKey: key, nonce: nonce, signature: signature)
        else {
            close(error: "Authorization Violation")
            return
        }
        guard router.admit(user: key, granted) else {
            close(error: "maximum connections for this user exceeded")
            return
        }
        router.authenticated(self)
        admittedUser = key
        userKey = key
        permissions = granted.permissions
        isTrusted = granted.isTrusted
        preAuthTail = nil
        // From now on the output queue may grow to the authenticated limit.
        outputLimit = max(router.limits.maxPendingBytes, 1)
        try? context?.channel.syncOptions?.setOption(
            .writeBufferWaterMark, value: .init(low: outputLimit / 2, high: outputLimit))
        if !isTrusted, router.isTrustedBackedUp { gate.pause(.trustedBackedUp) }
        echo = connect.echo
        verbose = connect.verbose
        headersSupported = connect.headers
        wantsNoResponders = connect.noResponders && connect.headers
        okIfVerbose()
    }

    private func useResponse(_ subject: String) -> Bool {
        guard permissions?.allowResponses == true, responses.remove(subject) != nil else { return false }
        return true
    }

    /// Called when a subscription ended by reaching its `UNSUB` maximum.
    func forget(_ subscription: BusSubscription) {
        if subscriptions[subscription.sid] === subscription { subscriptions[subscription.sid] = nil }
    }

    // MARK: Writing

    /// Writes a message for one of this client's subscriptions; false if the client is gone or
    /// was cut off as a slow consumer.
    func deliver(subject: String, sid: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer) -> Bool {
        guard !closing, admitsWrite() else { return false }
        if let replyTo, permissions?.allowResponses == true, !(permissions?.mayPublish(replyTo) ?? false) {
            if responses.insert(replyTo).inserted {
                responseOrder.append(replyTo)
                if responseOrder.count > Self.responseLimit {
                    let dropped = responseOrder.prefix(responseOrder.count - Self.responseLimit / 2)
                    for subject in dropped { responses.remove(subject) }
                    responseOrder.removeFirst(dropped.count)
                }
            }
        }
        let headers = headersSupported ? headers : nil
        append(reserving: subject.utf8.count + payload.readableBytes + 64) { buffer in
            payload.withUnsafeReadableBytes { bytes in
                buffer.writeMessage(subject: subject, sid: sid, replyTo: replyTo, headers: headers, payload: bytes)
            }
        }
        return true
    }

    /// Hands what was written since the last flush to NIO and flushes the channel.
    func flush() {
        guard let context else { return }
        if let buffer = outbound, buffer.readableBytes > 0 {
            outbound = nil
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
        context.flush()
    }

    private func append(reserving size: Int, _ body: (inout ByteBuffer) -> Void) {
        if outbound == nil, let context {
            outbound = context.channel.allocator.buffer(capacity: max(size, 256))
        }
        body(&outbound!)
    }

    /// Whether the next write may be queued: false (and the connection closed as a slow
    /// consumer) when an untrusted client's queue is past its high-water mark. A trusted
    /// client is never cut off; the router pauses its sources instead.
    private func admitsWrite() -> Bool {
        guard let context, !closing else { return false }
        guard isTrusted || (context.channel.isWritable && (outbound?.readableBytes ?? 0) < outputLimit) else {
            router.countSlowConsumer()
            close(error: "Slow Consumer")
            return false
        }
        return true
    }

    /// Queues a control message (`INFO`, `PONG`, `+OK`, `-ERR`) under the same limit as `MSG`.
    private func write(_ body: (inout ByteBuffer) -> Void) {
        guard admitsWrite() else { return }
        append(reserving: 64, body)
    }

    private func okIfVerbose() {
        if verbose { write { $0.writeOK() } }
    }

    private func sendError(_ message: String) {
        write { $0.writeError(message) }
    }

    /// The final `-ERR` before closing: written while the queue is within its limit.
    private func writeFinalError(_ message: String) {
        append(reserving: 64) { $0.writeError(message) }
    }

    /// Sends `-ERR` (when given) and closes the connection once it is written, or after a
    /// second at most (a peer that does not read must not keep it open).
    func close(error: String?) {
        guard !closing, let context else { return }
        closing = true
        if let error { closeReason = error }
        authTimer?.cancel()
        resumeTimer?.cancel()
        let channel = context.channel
        guard channel.isWritable else {  // a slow consumer: nothing more would get through
            channel.close(promise: nil)
            return
        }
        if let error { writeFinalError(error) }
        flush()
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0)))
            .whenComplete { _ in channel.close(promise: nil) }
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
    }

    /// About the encoded size of a header block (it is spent from the publish budget).
    private static func size(of headers: NATSHeaders?) -> Int {
        guard let headers else { return 0 }
        return headers.fields.reduce(12) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
    }

    private static func errorText(for error: NATSProtocolError) -> String {
        let text = String(describing: error).replacing("'", with: "\"")
        return "Protocol Error: \(text.prefix(200))"
    }
}
