import FoundationEssentials
import NATSWire
import NIOCore

/// One connection to the bus: the server side of the NATS client protocol.
///
/// Runs on the bus's event loop. Before a valid nkey `CONNECT` nothing else is accepted;
/// afterwards every `PUB` and `SUB` is checked against the user's ``BusPermissions``. A
/// permission error is reported with `-ERR` and the connection stays up, as nats-server does;
/// protocol errors and failed authentication close it.
final class BusClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let router: BusRouter
    private var reader: FrameReader<ClientOpDecoder>
    private var context: ChannelHandlerContext?
    private let nonce: String
    private let clientID: UInt64
    private var authTimer: Scheduled<Void>?
    private(set) var userKey: String?
    /// Set once the router counted this connection for its user.
    private(set) var admittedUser: String?
    private var permissions: BusPermissions?
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
    var isDirty = false

    init(router: BusRouter) {
        self.router = router
        self.reader = FrameReader(ClientOpDecoder(maxControlLine: router.limits.maxControlLine,
                                                  maxPayload: router.limits.maxPayload))
        self.clientID = router.makeClientID()
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
        var buffer = context.channel.allocator.buffer(capacity: 512)
        try? buffer.writeInfo(info)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        authTimer = context.eventLoop.scheduleTask(in: router.limits.authTimeout) {
            handler.value.close(error: "Authentication Timeout")
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        authTimer?.cancel()
        router.unregister(self)
        subscriptions.removeAll()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        do {
            try reader.read(unwrapInboundIn(data)) { op in handle(op) }
        } catch let error as NATSProtocolError {
            close(error: Self.errorText(for: error))
        } catch {
            close(error: "Protocol Error")
        }
        router.flushDirty()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        router.flushDirty()
        context.flush()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(error: nil)
    }

    // MARK: Operations

    private func handle(_ op: ClientOp) {
        guard !closing else { return }
        guard let permissions else {
            if case .connect(let connect) = op {
                authenticate(connect)
            } else {
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
        guard router.admit(user: key, permissions: granted) else {
            close(error: "maximum connections for this user exceeded")
            return
        }
        admittedUser = key
        userKey = key
        permissions = granted
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
        guard let context, !closing else { return false }
        guard context.channel.isWritable else {
            close(error: "Slow Consumer")
            return false
        }
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
        var buffer = context.channel.allocator.buffer(capacity: subject.utf8.count + payload.readableBytes + 64)
        payload.withUnsafeReadableBytes { bytes in
            buffer.writeMessage(subject: subject, sid: sid, replyTo: replyTo,
                                headers: headersSupported ? headers : nil, payload: bytes)
        }
        context.write(wrapOutboundOut(buffer), promise: nil)
        return true
    }

    func flush() {
        context?.flush()
    }

    private func write(_ body: (inout ByteBuffer) -> Void) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        body(&buffer)
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func okIfVerbose() {
        if verbose { write { $0.writeOK() } }
    }

    private func sendError(_ message: String) {
        write { $0.writeError(message) }
    }

    /// Sends `-ERR` (when given) and closes the connection once it is written, or after a
    /// second at most (a peer that does not read must not keep it open).
    func close(error: String?) {
        guard !closing, let context else { return }
        closing = true
        authTimer?.cancel()
        let channel = context.channel
        guard channel.isWritable else {  // a slow consumer: nothing more would get through
            channel.close(promise: nil)
            return
        }
        if let error { sendError(error) }
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0)))
            .whenComplete { _ in channel.close(promise: nil) }
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
    }

    private static func errorText(for error: NATSProtocolError) -> String {
        let text = String(describing: error).replacing("'", with: "\"")
        return "Protocol Error: \(text.prefix(200))"
    }
}
