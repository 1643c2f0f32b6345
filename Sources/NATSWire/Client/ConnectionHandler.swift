import NIOCore

/// The channel handler of one connection to a server. It decodes server operations, runs
/// the handshake (`INFO` → `CONNECT`+`PING` → `PONG`), answers server `PING`s, and hands
/// everything else to its ``NATSClient`` on the event loop.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case awaitingInfo
        /// TLS was started after the server's `INFO`; `CONNECT` waits for the handshake.
        case awaitingTLS(ServerInfo)
        case awaitingPong(ServerInfo)
        case ready
        case done
    }

    private var phase = Phase.awaitingInfo
    private var reader: FrameReader<ServerOpDecoder>
    private let client: NATSClient
    private let server: ServerAddress
    private let handshake: EventLoopPromise<ServerInfo>
    private let connectTimeout: TimeAmount
    private var tlsActive: Bool
    private var handshakeTimer: Scheduled<Void>?
    private var failure: NATSError?
    /// A new `max_payload` from `INFO`, applied to the decoder once the current read is decoded.
    private var announcedMaxPayload: Int?
    /// Subscriptions that received messages during the current read; woken once it is decoded.
    private var toSignal: [SubscriptionBuffer] = []
    /// True while `channelRead` decodes; a close it causes must not re-enter the reader.
    private var reading = false

    init(client: NATSClient, server: ServerAddress, handshake: EventLoopPromise<ServerInfo>, tlsActive: Bool,
         maxControlLine: Int, connectTimeout: TimeAmount) {
        self.tlsActive = tlsActive
        self.client = client
        self.server = server
        self.handshake = handshake
        self.connectTimeout = connectTimeout
        self.reader = FrameReader(ServerOpDecoder(maxControlLine: maxControlLine))
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        let handshake = self.handshake
        let seconds = Double(connectTimeout.nanoseconds) / 1e9
        handshakeTimer = context.eventLoop.scheduleTask(in: connectTimeout) {
            handshake.fail(NATSError.timeout(operation: "handshake with the server", seconds: seconds))
            channel.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        defer { reading = false }
        do {
            try reader.read(unwrapInboundIn(data)) { op in try handle(op, context: context) }
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

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        client.writabilityChanged(on: context.channel)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A close from inside a read (after a server -ERR, say) arrives here while the reader
        // is still decoding: the rest of that read no longer matters, and must not be touched.
        if !reading {
            do {
                try reader.finish { op in try handle(op, context: context) }
            } catch {
                failure = failure ?? Self.natsError(error)
            }
        }
        handshakeTimer?.cancel()
        if case .ready = phase {
            client.connectionLost(context.channel, error: failure)
        } else {
            handshake.fail(failure ?? NATSError.connectionFailed(
                servers: [server.description], reason: "the server closed the connection during the handshake"))
        }
        phase = .done
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error, context: context)
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        failure = failure ?? Self.natsError(error)
        context.close(promise: nil)
    }

    static func natsError(_ error: any Error) -> NATSError {
        switch error {
        case let error as NATSError: return error
        case let error as NATSProtocolError: return .protocolViolation(error)
        default: return .serverError("\(error)")
        }
    }

    private func handle(_ op: ServerOp, context: ChannelHandlerContext) throws {
        if case .ping = op {
            var pong = context.channel.allocator.buffer(capacity: 6)
            pong.writePong()
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
            return
        }
        switch phase {
        case .ready:
            if case .info(let info) = op { announcedMaxPayload = max(info.maxPayload, 1) }
            if let buffer = client.received(op, on: context.channel, from: server), toSignal.last !== buffer {
                toSignal.append(buffer)
            }
        case .awaitingInfo:
            guard case .info(let info) = op else {
                throw NATSError.connectionFailed(servers: [server.description], reason: "expected INFO first, got \(op)")
            }
            announcedMaxPayload = max(info.maxPayload, 1)
            if !tlsActive, try client.wantsTLS(after: info, server: server) {
                tlsActive = true
                phase = .awaitingTLS(info)
                try context.pipeline.syncOperations.addHandler(try client.makeTLSHandler(for: server), position: .before(self))
                return
            }
            try sendConnect(info, context: context)
        case .awaitingTLS:
            break  // nothing may arrive in clear after INFO; TLS records go to the TLS handler
        case .awaitingPong(let info):
            switch op {
            case .pong:
                phase = .ready
                handshakeTimer?.cancel()
                handshake.succeed(info)
            case .err(let message):
                throw Self.handshakeError(message, server: server)
            case .info(let update):
                phase = .awaitingPong(update)
            default:
                break
            }
        case .done:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSClientHandler.HandshakeCompleted, case .awaitingTLS(let info) = phase {
            do {
                try sendConnect(info, context: context)
            } catch {
                fail(error, context: context)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// `CONNECT` and `PING` in one write; the `PONG` completes the handshake.
    private func sendConnect(_ info: ServerInfo, context: ChannelHandlerContext) throws {
        var out = context.channel.allocator.buffer(capacity: 512)
        try out.writeConnect(client.connectInfo(for: info, server: server))
        out.writePing()
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        phase = .awaitingPong(info)
    }

    static func handshakeError(_ message: String, server: ServerAddress) -> NATSError {
        let lower = message.lowercased()
        if lower.contains("authorization") || lower.contains("authentication") || lower.contains("user") {
            return .authorizationFailed(server: server.description, message: message)
        }
        return .connectionFailed(servers: [server.description], reason: message)
    }
}
