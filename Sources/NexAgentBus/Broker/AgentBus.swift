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
public final class AgentBus: Sendable {
    public let host: String
    private let requestedPort: Int
    private let eventLoop: any EventLoop
    private let router: BusRouter
    private let channel = Mutex<(any Channel)?>(nil)
    private let logger: Logger

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
        self.router = BusRouter(eventLoop: eventLoop, limits: limits, serverID: serverID)
    }

    /// Starts listening.
    public func start() async throws {
        let router = self.router
        let limits = router.limits
        let bootstrap = ServerBootstrap(group: eventLoop)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark,
                                value: .init(low: limits.maxPendingBytes / 2, high: limits.maxPendingBytes))
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

    /// The port it listens on (0 before ``start()``).
    public var port: Int {
        channel.withLock { $0?.localAddress?.port } ?? 0
    }

    /// `nats://<host>:<port>`, for agents.
    public var url: String {
        host.contains(":") && !host.hasPrefix("[") ? "nats://[\(host)]:\(port)" : "nats://\(host):\(port)"
    }

    /// Adds (or replaces) a user identified by its public nkey.
    public func addUser(publicKey: String, permissions: BusPermissions) async {
        let router = self.router
        try? await eventLoop.submit { router.setUser(publicKey, permissions: permissions) }.get()
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
        let bound = channel.withLock { channel -> (any Channel)? in
            defer { channel = nil }
            return channel
        }
        try? await bound?.close()
        let router = self.router
        try? await eventLoop.submit { router.closeAll() }.get()
    }
}
