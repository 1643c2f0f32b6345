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
    public let options: NATSClientOptions
    let eventLoop: any EventLoop
    let writer: Mutex<WriterState>
    let state: Mutex<ClientState>
    /// `<inboxPrefix>.<nuid>`: the muxed request inbox of this client.
    let requestInbox: String
    /// Runs tasks on this client's event loop; see ``EventLoopTaskExecutor``.
    public let taskExecutor: EventLoopTaskExecutor
    /// The OpenSSL context, built once from ``NATSClientOptions/tls`` (or defaults).
    let tlsContext: TLSContext
    var logger: Logger { options.logger }

    public init(options: NATSClientOptions) throws {
        guard !options.servers.isEmpty else { throw NATSError.invalidURL("", reason: "no server URL given") }
        let servers = try options.servers.map { url throws(NATSError) in try ServerAddress(parsing: url) }
        self.options = options
        self.eventLoop = options.eventLoopGroup.next()
        self.taskExecutor = EventLoopTaskExecutor(eventLoop)
        self.writer = Mutex(WriterState())
        self.state = Mutex(ClientState(servers: servers))
        self.requestInbox = "\(options.inboxPrefix).\(NUID.next())"
        self.tlsContext = try TLSContext(options.tls ?? NATSTLSOptions())
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

    /// Every server the client knows: configured ones, then those learned from `connect_urls`.
    public var knownServers: [String] { state.withLock { $0.servers.map(\.description) } }

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
        let servers: [ServerAddress] = try state.withLock { s throws(NATSError) in
            guard s.lifecycle == .idle else {
                throw s.lifecycle == .closed ? NATSError.connectionClosed
                    : NATSError.unsupported("connect() was already called on this client")
            }
            s.lifecycle = .connecting
            return s.servers
        }
        let channel: any Channel
        do {
            channel = try await connectToFirstAvailable(servers)
        } catch {
            shutdown(error: error as? NATSError)
            throw error
        }
        let started = state.withLock { s -> Bool in
            guard s.lifecycle == .connecting else { return false }
            s.lifecycle = .running
            s.supervisor = Task { await self.supervise(from: channel) }
            return true
        }
        guard started else {
            channel.close(promise: nil)
            throw NATSError.connectionClosed
        }
        emit(.connected(server: connectedServer ?? ""))
    }

    /// Tries each server once, in order; returns the first connection whose handshake completes.
    private func connectToFirstAvailable(_ servers: [ServerAddress]) async throws -> any Channel {
        var lastError: NATSError?
        for server in servers {
            do {
                return try await attempt(server)
            } catch {
                logger.debug("natswire connect failed", metadata: ["server": "\(server)", "error": "\(error)"])
                if case .authorizationFailed = error { throw error }
                lastError = error
            }
        }
        if servers.count == 1, let lastError { throw lastError }
        throw NATSError.connectionFailed(
            servers: servers.map(\.description), reason: lastError.map { "\($0)" } ?? "no server to try")
    }

    /// One connection attempt: TCP, handshake, then activation (subscriptions re-sent, buffer flushed).
    private func attempt(_ server: ServerAddress) async throws(NATSError) -> any Channel {
        let handshake = eventLoop.makePromise(of: ServerInfo.self)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(options.connectTimeout)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .channelInitializer { [options] channel in
                channel.eventLoop.makeCompletedFuture {
                    let tlsFirst = options.tls?.handshakeFirst == true
                    if tlsFirst { try channel.pipeline.syncOperations.addHandler(try self.makeTLSHandler(for: server)) }
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(
                        client: self, server: server, handshake: handshake, tlsActive: tlsFirst,
                        maxControlLine: options.maxControlLine, connectTimeout: options.connectTimeout))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: server.host, port: server.port).get()
        } catch {
            handshake.fail(error)
            let underlying = (error as? NIOConnectionError)?.connectionErrors.first?.error ?? error
            let cause = (underlying as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(underlying)"
            throw NATSError.connectionFailed(servers: [server.description], reason: cause)
        }
        do {
            let info = try await handshake.futureResult.get()
            try await eventLoop.submit { try self.activate(channel, info: info, server: server) }.get()
            return channel
        } catch {
            channel.close(promise: nil)
            switch ConnectionHandler.natsError(error) {
            case let named where named.namesServer: throw named
            case let other: throw NATSError.connectionFailed(servers: [server.description], reason: "\(other)")
            }
        }
    }

    /// Whether to start TLS after this server's `INFO`. Throws when the client wants TLS and the
    /// server does not offer it (never falls back to clear text).
    func wantsTLS(after info: ServerInfo, server: ServerAddress) throws(NATSError) -> Bool {
        let clientWants = server.tls || options.tls != nil
        if clientWants && !(info.tlsRequired || info.tlsAvailable) {
            throw NATSError.tlsFailed(server: server.description, reason: "TLS was requested but the server does not offer it")
        }
        return clientWants || info.tlsRequired
    }

    func makeTLSHandler(for server: ServerAddress) throws(NATSError) -> TLSClientHandler {
        try TLSClientHandler(context: tlsContext, host: server.host, server: server.description)
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
            w.pingsOutstanding = 0
            w.flushScheduled = true
        }
        learnServers(from: info, via: server)
        startKeepAlive(on: channel)
        flushOutbound()
    }

    private func startKeepAlive(on channel: any Channel) {
        let interval = options.pingInterval
        let task = channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] task in
            guard let self else { return task.cancel() }
            self.sendKeepAlive(on: channel)
        }
        let previous = state.withLock { s in
            defer { s.keepAlive = task }
            return s.keepAlive
        }
        previous?.cancel()
    }

    private func sendKeepAlive(on channel: any Channel) {
        let stale = writer.withLock { w -> Bool in
            guard w.channel === channel else { return false }
            if w.pingsOutstanding >= options.maxPingsOutstanding { return true }
            w.pingsOutstanding += 1
            w.nextPongID += 1
            w.pongWaiters.append(.init(id: w.nextPongID, continuation: nil))
            w.out.writePing()
            return false
        }
        if stale {
            logger.debug("natswire stale connection", metadata: ["server": "\(connectedServer ?? "")"])
            state.withLock { $0.disconnectReason = .staleConnection }
            emit(.error(.staleConnection))
            channel.close(promise: nil)
        } else {
            flushOutbound()
        }
    }

    /// Adds the servers of `connect_urls` to the list (a cluster tells clients about its members).
    /// `via` is the server that sent `info`; its credentials and TLS setting carry over.
    func learnServers(from info: ServerInfo, via origin: ServerAddress) {
        let added: [String] = state.withLock { s in
            var added: [String] = []
            for url in info.connectURLs {
                guard let address = try? ServerAddress(parsing: url, discovered: true) else { continue }
                if !s.servers.contains(where: { $0.host == address.host && $0.port == address.port }) {
                    // connect_urls carry no credentials: use those of the URL connected to, as nats.go does.
                    var learned = address
                    learned.tls = origin.tls
                    learned.user = origin.user
                    learned.password = origin.password
                    s.servers.append(learned)
                    added.append(learned.description)
                }
            }
            return added
        }
        if !added.isEmpty { emit(.serversDiscovered(added)) }
    }

    // MARK: Keeping the connection up

    /// Runs for the life of the client: waits for the connection to drop, then reconnects.
    private func supervise(from first: any Channel) async {
        var channel = first
        while true {
            try? await channel.closeFuture.get()
            // One trip through the channel's loop: its handlers have reported why it closed.
            try? await channel.eventLoop.submit {}.get()
            connectionLost(channel, error: nil)
            let (closing, reason) = state.withLock { s in
                defer { s.disconnectReason = nil }
                return (s.lifecycle == .closed, s.disconnectReason)
            }
            if closing { return }
            guard options.allowReconnect else {
                shutdown(error: reason)
                return
            }
            emit(.disconnected(error: reason))
            guard let next = await reconnect() else { return }
            channel = next
            emit(.reconnected(server: connectedServer ?? ""))
        }
    }

    /// Rounds over the server list, starting after the server just lost, with a growing wait
    /// (doubling from `reconnectWait` to `maxReconnectWait`) plus jitter between rounds.
    private func reconnect() async -> (any Channel)? {
        var round = 0
        var lastError: NATSError?
        while options.maxReconnectAttempts < 0 || round < options.maxReconnectAttempts {
            let wait = min(options.reconnectWait.nanoseconds << min(round, 20), options.maxReconnectWait.nanoseconds)
            let jitter = options.reconnectJitter.nanoseconds > 0 ? Int64.random(in: 0...options.reconnectJitter.nanoseconds) : 0
            do {
                try await Task.sleep(nanoseconds: UInt64(max(0, wait + jitter)))
            } catch {
                return nil  // cancelled by close()
            }
            round += 1
            let servers = state.withLock { s -> [ServerAddress]? in
                guard s.lifecycle != .closed else { return nil }
                guard let current = s.currentServer,
                      let index = s.servers.firstIndex(where: { $0.host == current.host && $0.port == current.port })
                else { return s.servers }
                return Array(s.servers[(index + 1)...] + s.servers[...index])
            }
            guard let servers else { return nil }
            for server in servers {
                if state.withLock({ $0.lifecycle == .closed }) { return nil }
                do {
                    return try await attempt(server)
                } catch {
                    lastError = error
                    logger.debug("natswire reconnect failed", metadata: ["server": "\(server)", "error": "\(error)"])
                }
            }
        }
        shutdown(error: .connectionFailed(
            servers: knownServers, reason: "gave up after \(round) reconnect rounds: \(lastError.map { "\($0)" } ?? "")"))
        return nil
    }

    /// Detaches a lost channel: later publishes are buffered, pending flushes fail.
    func connectionLost(_ channel: any Channel, error: NATSError?) {
        // Keep the reason even when the supervisor detached the channel first.
        if let error { state.withLock { s in s.disconnectReason = s.disconnectReason ?? error } }
        let detached: (CircularBuffer<WriterState.PongWaiter>, [CheckedContinuation<Void, any Error>])? = writer.withLock { w in
            guard w.channel === channel else { return nil }
            w.channel = nil
            if w.status == .connected { w.status = .disconnected }
            w.pingsOutstanding = 0
            w.flushScheduled = false
            defer {
                w.pongWaiters.removeAll()
                w.spaceWaiters.removeAll()
            }
            return (w.pongWaiters, w.spaceWaiters)
        }
        guard let (pongs, space) = detached else { return }
        let keepAlive = state.withLock { s in
            defer { s.keepAlive = nil }
            return s.keepAlive
        }
        keepAlive?.cancel()
        for pong in pongs { pong.continuation?.resume(throwing: NATSError.disconnected) }
        for waiter in space { waiter.resume() }
    }

    // MARK: Closing

    /// Closes the connection now. Subscriptions end, pending requests and flushes fail with
    /// ``NATSError/connectionClosed``. Use ``drain()`` to finish in-flight work first.
    public func close() async {
        let supervisor = shutdown(error: nil)
        await supervisor?.value
    }

    /// Marks the client closed and releases everything; returns the supervisor to await.
    @discardableResult
    func shutdown(error: NATSError?) -> Task<Void, Never>? {
        let (channel, pongs, space) = writer.withLock { w in
            let taken = (w.channel, w.pongWaiters, w.spaceWaiters)
            w.status = .closed
            w.channel = nil
            w.pongWaiters.removeAll()
            w.spaceWaiters.removeAll()
            w.out.clear()
            return taken
        }
        let released = state.withLock { s -> (ClientState.Lifecycle, [SubscriptionBuffer], [ClientState.Request], [AsyncStream<NATSEvent>.Continuation], Task<Void, Never>?, RepeatedTask?, NATSError?) in
            let previous = s.lifecycle
            s.lifecycle = .closed
            if previous != .closed { s.closeError = error }
            defer {
                s.subscriptions.removeAll()
                s.requests.removeAll()
                s.eventSinks.removeAll()
                s.supervisor = nil
                s.keepAlive = nil
            }
            return (previous, s.subscriptions.values.map(\.buffer), Array(s.requests.values), Array(s.eventSinks.values),
                    s.supervisor, s.keepAlive, s.closeError)
        }
        let (previous, buffers, requests, sinks, supervisor, keepAlive, closeError) = released
        keepAlive?.cancel()
        channel?.close(promise: nil)
        supervisor?.cancel()
        for pong in pongs { pong.continuation?.resume(throwing: NATSError.connectionClosed) }
        for waiter in space { waiter.resume(throwing: NATSError.connectionClosed) }
        for buffer in buffers { buffer.finish() }
        for request in requests {
            request.timer?.cancel()
            request.continuation.resume(throwing: NATSError.connectionClosed)
        }
        if previous != .closed {
            for sink in sinks {
                sink.yield(.closed(error: closeError))
                sink.finish()
            }
        }
        return supervisor
    }
}
