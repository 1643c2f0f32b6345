import Logging
import NATSWire
import NIOCore
import NIOPosix
import Synchronization

/// The node's private NATS-protocol broker for its agents.
///
/// It listens only on a loopback address, authenticates every connection with an nkey
/// signature of its nonce, and holds each user to its ``BusPermissions``. Users are added
/// and removed while it runs: one per agent, plus the node's own. A stock NATS client can
/// connect to it with an agent's seed and is held to the same rules.
///
/// It bounds what any peer can make it hold (``BusLimits``): before `CONNECT` it accepts
/// nothing else and buffers a control line at most; every client's output queue is capped and
/// a client that does not drain it is closed as a slow consumer; each untrusted user may
/// publish so many bytes and messages per second, past which the bus stops reading from its
/// sockets until its budget refills (backpressure, not loss).
///
/// A *trusted* user (the node's own, see ``addUser(publicKey:permissions:isTrusted:)``) is
/// exempt from the slow-consumer cut-off, the publish budget and the per-user connection
/// limit. When a trusted connection falls behind, the bus stops reading from every untrusted
/// publisher until it has caught up, so what waits for it stays bounded too. If a trusted
/// connection closes anyway, ``trustedLinkLosses()`` says so.
public final class AgentBus: Sendable {
    public let host: String
    private let requestedPort: Int
    /// The event loop every connection of the bus runs on.
    public let eventLoop: any EventLoop
    private let router: BusRouter
    private let channel = Mutex<(any Channel)?>(nil)
    private let logger: Logger
    private let losses = LinkLossBroadcaster()

    /// - Parameters:
    ///   - host: a literal loopback address (127.0.0.0/8 or ::1); anything else is refused.
    ///   - port: 0 picks a free port.
    public init(host: String = "127.0.0.1", port: Int = 0, limits: BusLimits = BusLimits(),
                eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next(),
                logger: Logger = Logger(label: "nex.agent-bus")) throws(AgentBusError) {
        guard AgentBusError.isLoopback(host) else { throw .notLoopback(host: host) }
        self.host = host
        self.requestedPort = port
        self.eventLoop = eventLoop
        self.logger = logger
        let serverID = "NEXBUS" + String(UInt64.random(in: 0...UInt64.max), radix: 36).uppercased()
        let router = BusRouter(eventLoop: eventLoop, limits: limits, serverID: serverID)
        let losses = self.losses
        let lossLogger = logger
        router.onTrustedLinkLoss = { loss in
            lossLogger.error("trusted agent-bus connection lost", metadata: [
                "client": "\(loss.clientID)", "user": "\(loss.publicKey)", "reason": "\(loss.reason)"])
            losses.yield(loss)
        }
        self.router = router
    }

    /// Starts listening.
    public func start() async throws {
        let router = self.router
        let limits = router.limits
        let bootstrap = ServerBootstrap(group: eventLoop)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            // Until it authenticates a client is only ever sent INFO and one -ERR; the handler
            // raises the mark to maxPendingBytes after CONNECT.
            .childChannelOption(.writeBufferWaterMark,
                                value: .init(low: limits.maxPendingBytesBeforeAuth / 2,
                                             high: max(limits.maxPendingBytesBeforeAuth, 1)))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(BusClientHandler(router: router))
                }
            }
        let address = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        do {
            let bound = try await bootstrap.bind(host: address, port: requestedPort).get()
            channel.withLock { $0 = bound }
            logger.debug("agent bus listening", metadata: ["url": "\(url)"])
        } catch {
            throw AgentBusError.bindFailed(host: host, port: requestedPort, reason: "\(error)")
        }
    }

    /// Serves a client on a stream socket already connected to it: one end of a socket pair
    /// whose other end a sandboxed agent was started with (it may have no network to dial the
    /// loopback listener from, and needs none). The connection then follows the same rules as
    /// one accepted on the listener; the bus owns the descriptor from here on.
    public func adopt(connectedSocket descriptor: Int32) async throws {
        let router = self.router
        let limits = router.limits
        _ = try await ClientBootstrap(group: eventLoop)
            .channelOption(.writeBufferWaterMark,
                           value: .init(low: limits.maxPendingBytesBeforeAuth / 2, high: max(limits.maxPendingBytesBeforeAuth, 1)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(BusClientHandler(router: router))
                }
            }
            .withConnectedSocket(descriptor).get()
    }

    /// The port it listens on (0 before ``start()``).
    public var port: Int {
        channel.withLock { $0?.localAddress?.port } ?? 0
    }

    /// `nats://<host>:<port>`, for agents.
    public var url: String {
        host.contains(":") && !host.hasPrefix("[") ? "nats://[\(host)]:\(port)" : "nats://\(host):\(port)"
    }

    /// Adds (or replaces) a user identified by its public nkey. It is trusted exactly when
    /// `permissions` is ``BusPermissions/everything`` (the node's own user).
    public func addUser(publicKey: String, permissions: BusPermissions) async {
        await addUser(publicKey: publicKey, permissions: permissions, isTrusted: permissions == .everything)
    }

    /// Adds (or replaces) a user identified by its public nkey.
    ///
    /// - Parameter isTrusted: whether the user is the node's own. A trusted user's connections
    ///   are never closed as slow consumers nor rate-limited and may be any number; when one
    ///   falls behind, the bus pauses untrusted publishers instead, and when one closes,
    ///   ``trustedLinkLosses()`` reports it. Never trust an agent.
    public func addUser(publicKey: String, permissions: BusPermissions, isTrusted: Bool) async {
        let router = self.router
        let user = BusUser(permissions: permissions, isTrusted: isTrusted)
        try? await eventLoop.submit { router.setUser(publicKey, user) }.get()
    }

    /// The node's own connection to the bus, in process (see ``BusLink``): trusted, with no
    /// socket between the node and its agents. Call after ``start()``; closed by ``shutdown()``.
    public func link() async throws -> BusLink {
        let router = self.router
        return try await eventLoop.submit {
            guard !router.isShuttingDown else { throw AgentBusError.shutDown }
            return BusLink(router: router)
        }.get()
    }

    /// Every closure of a trusted user's connection from now on, except those made by
    /// ``shutdown()``: whether the peer closed it, the socket failed, the bus closed it for a
    /// protocol error, or ``removeUser(publicKey:)`` removed the user.
    ///
    /// The node's link to its agents runs over such a connection and does not come back by
    /// itself, so the node should treat an element as fatal: log it and exit non-zero so its
    /// supervisor restarts it. Stop iterating before closing the link on purpose. Each call
    /// returns a new stream; all of them end when the bus shuts down.
    public func trustedLinkLosses() -> AsyncStream<TrustedLinkLoss> {
        losses.stream()
    }

    /// What the bus holds now (connections, buffered input, queued output) and counts of what
    /// it has refused since it started.
    public func statistics() async -> BusStatistics {
        let router = self.router
        return (try? await eventLoop.submit { router.statistics() }.get()) ?? BusStatistics()
    }

    /// Removes a user and closes its connections.
    public func removeUser(publicKey: String) async {
        let router = self.router
        try? await eventLoop.submit { router.removeUser(publicKey) }.get()
    }

    /// Connections currently open.
    public func connectionCount() async -> Int {
        let router = self.router
        return (try? await eventLoop.submit { router.clientCount }.get()) ?? 0
    }

    /// Stops listening and closes every connection.
    public func shutdown() async {
        let router = self.router
        let bound = channel.withLock { channel -> (any Channel)? in
            defer { channel = nil }
            return channel
        }
        try? await bound?.close()
        try? await eventLoop.submit { router.shutDown() }.get()
        losses.finish()
    }
}
