import NIOCore

/// The channel handler of one connection attempt (and, once its handshake completes, of the
/// connection). It decodes server operations, answers server `PING`s, delivers messages, and
/// feeds everything else to the client's ``ConnectionStateMachine``; it only carries out the
/// actions the machine returns (``run(_:context:)``). It lives on its channel's event loop.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let client: NATSClient
    /// The attempt this channel belongs to; the machine ignores events of attempts it left.
    private let id: Int
    private let server: ServerAddress
    private let connectTimeout: TimeAmount
    private var reader: FrameReader<ServerOpDecoder>
    private var handshakeTimer: Scheduled<Void>?
    /// Set once the machine activated this connection: messages are delivered from then on.
    private var established = false
    /// Set once this handler closes its channel: the rest of the current read is ignored.
    private var closing = false
    private var failure: NATSError?
    /// A new `max_payload` from `INFO`, applied to the decoder once the current read is decoded.
    private var announcedMaxPayload: Int?
    /// Subscriptions that received messages during the current read; woken once it is decoded.
    private var toSignal: [SubscriptionBuffer] = []
    /// True while `channelRead` decodes; a close it causes must not re-enter the reader.
    private var reading = false

    init(client: NATSClient, id: Int, server: ServerAddress, maxControlLine: Int, connectTimeout: TimeAmount) {
        self.client = client
        self.id = id
        self.server = server
        self.connectTimeout = connectTimeout
        self.reader = FrameReader(ServerOpDecoder(maxControlLine: maxControlLine))
    }

    func channelActive(context: ChannelHandlerContext) {
        run(client.channelActive(id: id, channel: context.channel), context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        defer { reading = false }
        do {
            try reader.read(unwrapInboundIn(data)) { op in handle(op, context: context) }
            signalConsumers()
            if let limit = announcedMaxPayload {
                reader.decoder.maxPayload = limit
                announcedMaxPayload = nil
            }
        } catch {
            signalConsumers()
            fail(error, context: context)
        }
    }

    private func signalConsumers() {
        guard !toSignal.isEmpty else { return }
        for buffer in toSignal { buffer.signal() }
        toSignal.removeAll(keepingCapacity: true)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        client.writabilityChanged(on: context.channel)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A close from inside a read (after a server -ERR, say) arrives here while the reader
        // is still decoding: the rest of that read no longer matters, and must not be touched.
        if !reading && !closing {
            do {
                try reader.finish { op in handle(op, context: context) }
            } catch {
                failure = failure ?? Self.natsError(error)
            }
        }
        closing = true
        handshakeTimer?.cancel()
        run(client.channelInactive(id: id, error: failure), context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error, context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSClientHandler.HandshakeCompleted {
            let id = self.id
            run(client.handle { $0.tlsEstablished(id: id) }, context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        failure = failure ?? Self.natsError(error)
        closing = true
        context.close(promise: nil)
    }

    static func natsError(_ error: any Error) -> NATSError {
        switch error {
        case let error as NATSError: return error
        case let error as NATSProtocolError: return .protocolViolation(error)
        default: return .serverError("\(error)")
        }
    }

    private func handle(_ op: ServerOp, context: ChannelHandlerContext) {
        guard !closing else { return }
        let id = self.id
        switch op {
        case .msg(let message):
            // The hot path: no state machine, no client lock beyond the subscription lookup.
            guard established else { return }
            if let buffer = client.deliver(message), toSignal.last !== buffer { toSignal.append(buffer) }
        case .ping:
            var pong = context.channel.allocator.buffer(capacity: 6)
            pong.writePong()
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .pong:
            run(client.handle { $0.pongReceived(id: id) }, context: context)
        case .info(let info):
            announcedMaxPayload = max(info.maxPayload, 1)
            run(client.handle { $0.infoReceived(info, id: id) }, context: context)
        case .err(let message):
            run(client.handle { $0.errorReceived(message, id: id) }, context: context)
        case .malformedMessage(let sid, let subject, let error):
            if established { client.receivedMalformed(sid: sid, subject: subject, error: error) }
        case .ok:
            break
        }
    }

    /// Carries out an action of the state machine: those that need this channel's pipeline
    /// here, the others through the client.
    private func run(_ action: ConnectionStateMachine.Action, context: ChannelHandlerContext) {
        context.eventLoop.preconditionInEventLoop()
        switch action {
        case .none:
            break
        case .armHandshakeTimer:
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let channel = context.channel
            let seconds = Double(connectTimeout.nanoseconds) / 1e9
            handshakeTimer = context.eventLoop.scheduleTask(in: connectTimeout) {
                let handler = handler.value
                handler.failure = handler.failure
                    ?? NATSError.timeout(operation: "handshake with the server", seconds: seconds)
                handler.closing = true
                channel.close(promise: nil)
            }
        case .startTLS(let server):
            do {
                try context.pipeline.syncOperations.addHandler(try client.makeTLSHandler(for: server), position: .before(self))
            } catch {
                fail(error, context: context)
            }
        case .sendConnect(let info, let server):
            // `CONNECT` and `PING` in one write; the `PONG` completes the handshake.
            do {
                var out = context.channel.allocator.buffer(capacity: 512)
                try out.writeConnect(client.connectInfo(for: info, server: server))
                out.writePing()
                context.writeAndFlush(wrapOutboundOut(out), promise: nil)
            } catch {
                fail(error, context: context)
            }
        case .activate:
            handshakeTimer?.cancel()
            handshakeTimer = nil
            established = true
            client.run(action, channel: context.channel)
        case .closeChannel(let report):
            closing = true
            if report != nil { client.run(action, channel: nil) }
            context.close(promise: nil)
        default:
            client.run(action, channel: context.channel)
        }
    }
}
