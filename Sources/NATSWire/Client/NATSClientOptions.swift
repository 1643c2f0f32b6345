import Logging
import NIOCore
import NIOPosix

/// Settings of a ``NATSClient``. Defaults follow nats.go where it has one.
public struct NATSClientOptions: Sendable {
    /// Server URLs: `nats://host:port`, `host:port`, with optional `user:pass@` or `token@`.
    public var servers: [String]
    /// The client name sent in `CONNECT` (shown by the server's monitoring).
    public var name: String?
    /// How the client authenticates: none, token, user and password, nkey, or a `.creds` file.
    /// Credentials in a server URL (`user:pass@`, `token@`) are used when this is `.none`.
    public var auth: NATSAuth = .none
    /// TLS settings; nil means TLS only where a URL says `tls://` or the server requires it
    /// (then with the system CA store).
    public var tls: NATSTLSOptions?
    /// Whether the server sends this client its own messages back.
    public var echo: Bool = true
    /// How long one connection attempt may take: TCP, the server's `INFO`, TLS and the answer to
    /// `CONNECT`/`PING`. Past it the attempt fails with ``NATSError/timeout(operation:seconds:)``.
    public var connectTimeout: Duration = .seconds(5)
    /// How often to send a keep-alive `PING` on an established connection.
    public var pingInterval: Duration = .seconds(120)
    /// Unanswered keep-alive `PING`s after which the connection is stale and is dropped.
    public var maxPingsOutstanding: Int = 2
    /// A stream socket already connected to the server (a Unix socket pair's end, say),
    /// used instead of dialing ``servers``; the first server is still what the client calls
    /// it. It is taken over (closed with the connection) and cannot be reconnected: set
    /// ``allowReconnect`` to false.
    public var connectedSocket: Int32?
    /// Whether to reconnect when the connection is lost.
    public var allowReconnect: Bool = true
    /// Reconnect rounds over the server list before giving up; negative means forever.
    public var maxReconnectAttempts: Int = 60
    /// The first wait between reconnect rounds; it doubles each round up to ``maxReconnectWait``.
    public var reconnectWait: Duration = .seconds(2)
    /// The longest wait between reconnect rounds, however many rounds have failed.
    public var maxReconnectWait: Duration = .seconds(30)
    /// Random extra wait added to each reconnect wait (up to this much).
    public var reconnectJitter: Duration = .milliseconds(100)
    /// Bytes of publishes kept while disconnected; beyond it `publish` throws ``NATSError/reconnectBufferFull(limit:)``.
    public var reconnectBufferSize: Int = 8 * 1024 * 1024
    /// Bytes of outgoing data buffered while connected before `publish` waits for the socket.
    public var maxPendingOutboundBytes: Int = 1024 * 1024
    /// Messages a subscription buffers for its consumer; past it new messages are dropped and
    /// counted in ``NATSSubscription/droppedMessages`` (a slow consumer).
    public var subscriptionPendingMessages: Int = 512 * 1024
    /// Payload bytes a subscription buffers for its consumer; past it new messages are dropped
    /// and counted, as for ``subscriptionPendingMessages``.
    public var subscriptionPendingBytes: Int = 64 * 1024 * 1024
    /// The default timeout of ``NATSClient/request(_:to:headers:timeout:)-(ByteBuffer,_,_,_)``.
    public var requestTimeout: Duration = .seconds(5)
    /// The default timeout of ``NATSClient/flush(timeout:)``.
    public var flushTimeout: Duration = .seconds(10)
    /// The default time ``NATSClient/drain(timeout:)`` gives consumers and pending requests to finish.
    public var drainTimeout: Duration = .seconds(30)
    /// The prefix of the client's reply inbox.
    public var inboxPrefix: String = "_INBOX"
    /// The longest control line accepted from the server.
    public var maxControlLine: Int = 4096
    /// The SwiftNIO event loops connections run on; each client takes one loop of the group.
    public var eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    /// Where the client logs connects, reconnects and server errors; silent by default.
    public var logger: Logger = Logger(label: "natswire", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Options for `servers` (tried in order, then in the order the cluster announces), with
    /// every other setting at its default.
    public init(servers: [String] = ["nats://127.0.0.1:4222"]) {
        self.servers = servers
    }
}
