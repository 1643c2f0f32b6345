import Logging
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A connection to a NATS system: publish, subscribe, request/reply, with keep-alive,
/// reconnect, and bounded memory everywhere.
///
/// ```swift
/// let client = try NATSClient(url: "nats://127.0.0.1:4222")
/// try await client.connect()
/// let sub = try await client.subscribe(to: "greet.*")
/// try await client.publish("hello", to: "greet.joe")
/// for await message in sub { print(message.string) }
/// ```
///
/// All methods are safe to call from any task. Publishing appends to an outbound buffer
/// that the event loop writes in batches; when that buffer is full, `publish` waits.
public final class NATSClient: Sendable {
    /// The options the client was made with (they do not change afterwards).
    public let options: NATSClientOptions
    let eventLoop: any EventLoop
    let writer: Mutex<WriterState>
    let state: Mutex<ClientState>
    /// `<inboxPrefix>.<nuid>`: the muxed request inbox of this client.
    let requestInbox: String
    /// Runs tasks on this client's event loop; see ``EventLoopTaskExecutor``.
    public let taskExecutor: EventLoopTaskExecutor
    /// The OpenSSL context: built at creation from ``NATSClientOptions/tls`` when it is set (so
    /// a file that does not load is reported at once), else with the defaults at the first
    /// server that needs TLS (a client that never uses TLS never initialises OpenSSL).
    private let tlsContext: Mutex<TLSContext?>
    var logger: Logger { options.logger }

    /// A client with `options`; nothing connects until ``connect()`` (or ``run()``).
    ///
    /// - Throws: ``NATSError/invalidURL(_:reason:)`` when there is no server URL or one does
    ///   not parse; ``NATSError/tlsFailed(server:reason:)`` when ``NATSClientOptions/tls`` names
    ///   files that do not load.
    public init(options: NATSClientOptions) throws {
        guard !options.servers.isEmpty else { throw NATSError.invalidURL("", reason: "no server URL given") }
        let servers = try options.servers.map { url throws(NATSError) in try ServerAddress(parsing: url) }
        self.options = options
        self.eventLoop = options.eventLoopGroup.next()
        self.taskExecutor = EventLoopTaskExecutor(eventLoop)
        self.writer = Mutex(WriterState())
        let configuration = ConnectionStateMachine.Configuration(
            allowReconnect: options.allowReconnect, maxReconnectAttempts: options.maxReconnectAttempts,
            reconnectWait: TimeAmount(options.reconnectWait), maxReconnectWait: TimeAmount(options.maxReconnectWait),
            maxPingsOutstanding: options.maxPingsOutstanding, tlsConfigured: options.tls != nil,
            tlsFirst: options.tls?.handshakeFirst == true)
        self.state = Mutex(ClientState(machine: ConnectionStateMachine(servers: servers, configuration: configuration)))
        self.requestInbox = "\(options.inboxPrefix).\(NUID.next())"
        self.tlsContext = Mutex(try options.tls.map { options throws(NATSError) in try TLSContext(options) })
    }

    /// A client for one or more comma-separated server URLs, with default options.
    public convenience init(url: String) throws {
        try self.init(options: NATSClientOptions(servers: url.split(separator: ",").map(String.init)))
    }

    /// The `INFO` of the server currently connected (or last connected).
    public var serverInfo: ServerInfo? { state.withLock { $0.info } }

    /// Whether a connection is up right now.
    public var isConnected: Bool { writer.withLock { $0.status == .connected } }

    /// The server currently connected, as a URL.
    public var connectedServer: String? {
        isConnected ? state.withLock { $0.currentServer?.description } : nil
    }

    /// The server currently connected: its host, port, and whether the connection uses TLS
    /// (`tls://`, configured TLS, or a server that requires it).
    package var connectedAddress: (host: String, port: Int, tls: Bool)? {
        guard isConnected else { return nil }
        return state.withLock { s in
            s.currentServer.map { ($0.host, $0.port, $0.tls || options.tls != nil || s.info?.tlsRequired == true) }
        }
    }

    /// Every server the client knows: configured ones, then those learned from `connect_urls`.
    public var knownServers: [String] { state.withLock { $0.machine.servers.map(\.description) } }

    /// A new, unique inbox subject for replies.
    public func newInbox() -> String { "\(options.inboxPrefix).\(NUID.next())" }

    /// A stream of connection events. Each call returns a new stream that sees events from now on.
    public func events() -> AsyncStream<NATSEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: NATSEvent.self, bufferingPolicy: .bufferingNewest(1024))
        let id = state.withLock { s -> Int? in
            guard s.lifecycle != .closed else { return nil }
            s.nextSinkID += 1
            s.eventSinks[s.nextSinkID] = continuation
            return s.nextSinkID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.eventSinks.removeValue(forKey: id) }
        }
        return stream
    }

    func emit(_ event: NATSEvent) {
        logger.debug("natswire event", metadata: ["event": "\(event)"])
        let sinks = state.withLock { Array($0.eventSinks.values) }
        for sink in sinks { sink.yield(event) }
    }

    // MARK: Connecting

    /// Connects to the first server of the list that answers, and starts keeping the connection up.
    ///
    /// Throws ``NATSError/authorizationFailed(server:message:)`` when a server refuses the
    /// credentials, else ``NATSError/connectionFailed(servers:reason:)`` when none could be reached.
    public func connect() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let action = state.withLock { s in
                let action = s.machine.connectRequested()
                if case .dial = action { s.connectWaiter = continuation }
                return action
            }
            if case .reject(let error) = action {
                continuation.resume(throwing: error)
            } else {
                run(action, channel: nil)
            }
        }
    }

    /// Feeds an event to the connection's state machine; the caller runs the action it returns.
    func handle(_ event: (inout ConnectionStateMachine) -> ConnectionStateMachine.Action) -> ConnectionStateMachine.Action {
        state.withLock { event(&$0.machine) }
    }

    /// The TCP connection of attempt `id` is up: remember its channel (for `close()`) if the
    /// attempt is still current.
    func channelActive(id: Int, channel: any Channel) -> ConnectionStateMachine.Action {
        state.withLock { s in
            let action = s.machine.channelActive(id: id)
            if case .armHandshakeTimer = action { s.channel = (id, channel) }
            return action
        }
    }

    /// The channel of attempt or connection `id` closed.
    func channelInactive(id: Int, error: NATSError?) -> ConnectionStateMachine.Action {
        state.withLock { s in
            if s.channel?.id == id { s.channel = nil }
            return s.machine.channelInactive(id: id, error: error)
        }
    }

    /// Carries out what the state machine decided. `channel` is the channel the event came
    /// from, when it came from one. Never called with a lock held.
    func run(_ action: ConnectionStateMachine.Action, channel: (any Channel)?) {
        switch action {
        case .none, .startDrain, .reject:
            break
        case .dial(let server, let id):
            dial(server, id: id)
        case .armHandshakeTimer, .startTLS, .sendConnect:
            preconditionFailure("\(action) is carried out by the connection's channel handler")
        case .activate(let info, let server, _, let reconnected, let discovered):
            guard let channel else { preconditionFailure("activation comes from the connection's channel") }
            do {
                try activate(channel, info: info, server: server)
            } catch {
                channel.close(promise: nil)  // the client closed in the meantime
                return
            }
            if !discovered.isEmpty { emit(.serversDiscovered(discovered)) }
            if reconnected {
                emit(.reconnected(server: server.description))
            } else {
                emit(.connected(server: server.description))
                let waiter = state.withLock { s in
                    defer { s.connectWaiter = nil }
                    return s.connectWaiter
                }
                waiter?.resume()
            }
        case .updateInfo(let info, let origin, let discovered):
            infoUpdated(info, from: origin, discovered: discovered)
        case .completePing:
            if let channel { completePing(on: channel) }
        case .sendPing:
            if let channel { sendKeepAlive(on: channel) }
        case .reportError(let error):
            emit(.error(error))
        case .closeChannel(let report):
            if let report {
                logger.debug("natswire closing the connection", metadata: ["reason": "\(report)"])
                emit(.error(report))
            }
            channel?.close(promise: nil)
        case .connectionLost(let reason, let then):
            if let channel { detach(channel) }
            switch then {
            case .reconnect(let wait):
                emit(.disconnected(error: reason))
                scheduleReconnect(after: wait)
            case .close:
                shutdown(error: reason)
            case .giveUp(let error):
                emit(.disconnected(error: reason))
                shutdown(error: error)
            }
        case .scheduleReconnect(let wait):
            scheduleReconnect(after: wait)
        case .failConnect(let error):
            shutdown(error: error)
        case .shutdown(let error, let report):
            if report, let error {
                logger.error("natswire fatal server error", metadata: ["error": "\(error)"])
                emit(.error(error))
            }
            shutdown(error: error)
        }
    }

    /// Opens the TCP connection of one attempt; its ``ConnectionHandler`` reports the rest.
    private func dial(_ server: ServerAddress, id: Int) {
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(options.connectTimeout))
            .channelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
        if options.connectedSocket == nil {
            bootstrap = bootstrap.channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
        }
        bootstrap = bootstrap
            .channelInitializer { [options] channel in
                channel.eventLoop.makeCompletedFuture {
                    if options.tls?.handshakeFirst == true {
                        try channel.pipeline.syncOperations.addHandler(try self.makeTLSHandler(for: server))
                    }
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(
                        client: self, id: id, server: server,
                        maxControlLine: options.maxControlLine, connectTimeout: TimeAmount(options.connectTimeout)))
                }
            }
        // A socket given connected is used once: a reconnect has nothing to dial.
        let socket = options.connectedSocket.flatMap { fd in state.withLock { s -> Int32? in
            defer { s.connectedSocketUsed = true }
            return s.connectedSocketUsed ? nil : fd
        } }
        let connecting = socket.map { bootstrap.withConnectedSocket($0) }
            ?? (options.connectedSocket != nil
                ? eventLoop.makeFailedFuture(NATSError.connectionFailed(servers: [server.description], reason: "its connected socket was used up"))
                : bootstrap.connect(host: server.host, port: server.port))
        connecting.whenFailure { error in
            self.logger.debug("natswire connect failed", metadata: ["server": "\(server)", "error": "\(error)"])
            let underlying = (error as? NIOConnectionError)?.connectionErrors.first?.error ?? error
            let cause = (underlying as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(underlying)"
            let failure = NATSError.connectionFailed(servers: [server.description], reason: cause)
            self.run(self.handle { $0.dialFailed(id: id, error: failure) }, channel: nil)
        }
    }

    /// The wait before the next reconnect round, plus up to `reconnectJitter` at random.
    private func scheduleReconnect(after wait: TimeAmount) {
        let jitter = options.reconnectJitter.nanoseconds > 0 ? Int64.random(in: 0...options.reconnectJitter.nanoseconds) : 0
        let timer = eventLoop.scheduleTask(in: wait + .nanoseconds(jitter)) { [weak self] in
            guard let self else { return }
            self.run(self.handle { $0.reconnectTimerFired() }, channel: nil)
        }
        let scheduled = state.withLock { s -> Bool in
            guard s.lifecycle != .closed else { return false }
            s.reconnectTimer = timer
            return true
        }
        if !scheduled { timer.cancel() }
    }

    func makeTLSHandler(for server: ServerAddress) throws(NATSError) -> TLSClientHandler {
        let context = try tlsContext.withLock { context throws(NATSError) -> TLSContext in
            if let context { return context }
            let made = try TLSContext(options.tls ?? NATSTLSOptions())
            context = made
            return made
        }
        return try TLSClientHandler(context: context, host: server.host, server: server.description)
    }

    /// The `CONNECT` for a server's `INFO`: options, then credentials (signing the nonce when needed).
    func connectInfo(for info: ServerInfo, server: ServerAddress) throws -> ConnectInfo {
        var connect = ConnectInfo()
        connect.tlsRequired = server.tls || options.tls != nil || info.tlsRequired
        connect.name = options.name
        connect.echo = options.echo
        connect.headers = true
        connect.noResponders = true
        if let user = server.user {
            if let password = server.password {
                connect.user = user
                connect.pass = password
            } else {
                connect.authToken = user
            }
        }
        switch options.auth {
        case .none:
            break
        case .token(let token):
            connect.authToken = token
        case .userPassword(let user, let password):
            connect.user = user
            connect.pass = password
        case .nkey(let seed):
            let pair = try Self.keyPair(seed)
            connect.nkey = pair.publicKey
            connect.sig = try Self.signature(of: info, with: pair)
        case .credentialsFile(let path):
            let credentials: NATSCredentials
            do {
                credentials = try NATSCredentials(contentsOf: path)
            } catch {
                throw NATSError.invalidCredentials("\(path): \(error)")
            }
            connect.jwt = credentials.jwt
            connect.sig = try Self.signature(of: info, with: credentials.seed)
        case .jwt(let jwt, let seed):
            connect.jwt = jwt
            connect.sig = try Self.signature(of: info, with: try Self.keyPair(seed))
        }
        return connect
    }

    private static func keyPair(_ seed: String) throws -> NKeyPair {
        do {
            return try NKeyPair(seed: seed)
        } catch {
            throw NATSError.invalidCredentials("the nkey seed does not decode: \(error)")
        }
    }

    private static func signature(of info: ServerInfo, with pair: NKeyPair) throws -> String {
        guard let nonce = info.nonce else {
            throw NATSError.invalidCredentials("the server sent no nonce to sign; is nkey/JWT auth configured on it?")
        }
        return pair.signNonceBase64URL(nonce)
    }

    /// On the event loop, right after a handshake: re-sends subscriptions ahead of anything
    /// buffered while disconnected, then lets the buffer flow.
    private func activate(_ channel: any Channel, info: ServerInfo, server: ServerAddress) throws {
        channel.eventLoop.preconditionInEventLoop()
        try writer.withLock { w throws(NATSError) in
            guard w.status != .closed else { throw NATSError.connectionClosed }
            var head = channel.allocator.buffer(capacity: 4096 + w.out.readableBytes)
            state.withLock { s in
                s.info = info
                s.currentServer = server
                for (sid, sub) in s.subscriptions.sorted(by: { $0.key < $1.key }) {
                    head.writeSubscribe(subject: sub.subject, queue: sub.queue, sid: sid)
                    if let max = sub.max { head.writeUnsubscribe(sid: sid, max: max - sub.buffer.deliveredCount) }
                }
                if let mux = s.muxSID { head.writeSubscribe(subject: requestInbox + ".*", queue: nil, sid: mux) }
            }
            head.writeBuffer(&w.out)
            w.out = head
            w.channel = channel
            w.status = .connected
            w.writable = channel.isWritable
            w.maxPayload = info.maxPayload
            w.flushScheduled = true
        }
        startKeepAlive(on: channel)
        flushOutbound()
    }

    /// A `PING` timer per connection; the state machine decides between a `PING` and "stale".
    private func startKeepAlive(on channel: any Channel) {
        let interval = TimeAmount(options.pingInterval)
        let task = channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] task in
            guard let self else { return task.cancel() }
            let action = self.state.withLock { s -> ConnectionStateMachine.Action in
                guard let id = s.channel?.id, s.channel?.channel === channel else { return .none }
                return s.machine.pingTimerFired(id: id)
            }
            self.run(action, channel: channel)
        }
        let previous = state.withLock { s in
            defer { s.keepAlive = task }
            return s.keepAlive
        }
        previous?.cancel()
    }

    /// A keep-alive `PING`, queued behind any flush's so `PONG`s answer them in order.
    private func sendKeepAlive(on channel: any Channel) {
        let sent = writer.withLock { w -> Bool in
            guard w.channel === channel else { return false }
            w.nextPongID += 1
            w.pongWaiters.append(.init(id: w.nextPongID, continuation: nil))
            w.out.writePing()
            return true
        }
        if sent { flushOutbound() }
    }

    /// Detaches a lost channel: later publishes are buffered, pending flushes fail.
    private func detach(_ channel: any Channel) {
        let detached: (CircularBuffer<WriterState.PongWaiter>, [CheckedContinuation<Void, any Error>])? = writer.withLock { w in
            guard w.channel === channel else { return nil }
            w.channel = nil
            if w.status == .connected { w.status = .disconnected }
            w.flushScheduled = false
            defer {
                w.pongWaiters.removeAll()
                w.spaceWaiters.removeAll()
            }
            return (w.pongWaiters, w.spaceWaiters)
        }
        let keepAlive = state.withLock { s in
            defer { s.keepAlive = nil }
            return s.keepAlive
        }
        keepAlive?.cancel()
        guard let (pongs, space) = detached else { return }
        for pong in pongs { pong.continuation?.resume(throwing: NATSError.disconnected) }
        for waiter in space { waiter.resume() }
    }

    // MARK: Closing

    /// Closes the connection now. Subscriptions end, pending requests and flushes fail with
    /// ``NATSError/connectionClosed``. Use ``drain(timeout:)`` to finish in-flight work first.
    /// Returns once the connection's socket is closed.
    public func close() async {
        await finish { $0.closeRequested() }
    }

    /// Runs a closing event (`close()`, the end of a drain) and waits for the channel to close.
    func finish(_ event: (inout ConnectionStateMachine) -> ConnectionStateMachine.Action) async {
        run(handle(event), channel: nil)
        let closing = state.withLock { $0.closingChannel }
        try? await closing?.get()
    }

    /// The client is closed (the state machine is in `closed`): releases everything once.
    func shutdown(error: NATSError?) {
        let (pongs, space) = writer.withLock { w in
            let taken = (w.pongWaiters, w.spaceWaiters)
            w.status = .closed
            w.channel = nil
            w.pongWaiters.removeAll()
            w.spaceWaiters.removeAll()
            w.out.clear()
            return taken
        }
        let released = state.withLock { s in
            defer {
                s.subscriptions.removeAll()
                s.requests.removeAll()
                s.eventSinks.removeAll()
                s.closeWaiters.removeAll()
                s.keepAlive = nil
                s.reconnectTimer = nil
                s.connectWaiter = nil
                s.closingChannel = s.channel?.channel.closeFuture
                s.channel = nil
            }
            return (subscriptions: s.subscriptions.values.map(\.buffer), requests: Array(s.requests.values),
                    sinks: Array(s.eventSinks.values), closeWaiters: Array(s.closeWaiters.values),
                    timers: (s.keepAlive, s.reconnectTimer), channel: s.channel?.channel, connectWaiter: s.connectWaiter)
        }
        released.timers.0?.cancel()
        released.timers.1?.cancel()
        released.channel?.close(promise: nil)
        released.connectWaiter?.resume(throwing: error ?? NATSError.connectionClosed)
        for pong in pongs { pong.continuation?.resume(throwing: NATSError.connectionClosed) }
        for waiter in space { waiter.resume(throwing: NATSError.connectionClosed) }
        for buffer in released.subscriptions { buffer.finish() }
        for request in released.requests {
            request.timer?.cancel()
            request.continuation.resume(throwing: NATSError.connectionClosed)
        }
        for sink in released.sinks {
            sink.yield(.closed(error: error))
            sink.finish()
        }
        for waiter in released.closeWaiters { waiter.resume() }
    }
}
