import Logging
import NIOCore
import NIOPosix

/// Settings of a ``NATSClient``. Defaults follow nats.go where it has one.
public struct NATSClientOptions: Sendable {
    /// Server URLs: `nats://host:port`, `host:port`, with optional `user:pass@` or `token@`.
    public var servers: [String]
    /// The client name sent in `CONNECT` (shown by the server's monitoring).
    public var name: String?
    public var auth: NATSAuth = .none
    /// TLS settings; nil means TLS only where a URL says `tls://` or the server requires it
    /// (then with the system CA store).
    public var tls: NATSTLSOptions?
    /// Whether the server sends this client its own messages back.
    public var echo: Bool = true
    /// How long to wait for TCP, `INFO`, and the `CONNECT`/`PING` answer.
    public var connectTimeout: TimeAmount = .seconds(5)
    /// How often to send a keep-alive `PING`.
    public var pingInterval: TimeAmount = .seconds(120)
    /// Unanswered keep-alive `PING`s after which the connection is stale and is dropped.
    public var maxPingsOutstanding: Int = 2
    /// Whether to reconnect when the connection is lost.
    public var allowReconnect: Bool = true
    /// Reconnect rounds over the server list before giving up; negative means forever.
    public var maxReconnectAttempts: Int = 60
    /// The first wait between reconnect rounds; it doubles each round up to ``maxReconnectWait``.
    public var reconnectWait: TimeAmount = .seconds(2)
    public var maxReconnectWait: TimeAmount = .seconds(30)
    /// Random extra wait added to each reconnect wait (up to this much).
    public var reconnectJitter: TimeAmount = .milliseconds(100)
    /// Bytes of publishes kept while disconnected; beyond it `publish` throws ``NATSError/reconnectBufferFull(limit:)``.
    public var reconnectBufferSize: Int = 8 * 1024 * 1024
    /// Bytes of outgoing data buffered while connected before `publish` waits for the socket.
    public var maxPendingOutboundBytes: Int = 1024 * 1024
    /// Default per-subscription limits; past them messages are dropped and counted (slow consumer).
    public var subscriptionPendingMessages: Int = 512 * 1024
    public var subscriptionPendingBytes: Int = 64 * 1024 * 1024
    /// The default timeout of ``NATSClient/request(_:to:headers:timeout:)-(ByteBuffer,_,_,_)``.
    public var requestTimeout: TimeAmount = .seconds(5)
    /// The default timeout of ``NATSClient/flush(timeout:)`` and of drain's steps.
    public var flushTimeout: TimeAmount = .seconds(10)
    public var drainTimeout: TimeAmount = .seconds(30)
    /// The prefix of the client's reply inbox.
    public var inboxPrefix: String = "_INBOX"
    /// The longest control line accepted from the server.
    public var maxControlLine: Int = 4096
    public var eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    public var logger: Logger = Logger(label: "natswire", factory: { _ in SwiftLogNoOpLogHandler() })

    public init(servers: [String] = ["nats://127.0.0.1:4222"]) {
        self.servers = servers
    }
}
