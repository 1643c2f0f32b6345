import NIOCore

/// What the publishing hot path touches: the outbound bytes and the channel they go to.
/// Guarded by its own lock so publishers do not contend with message delivery.
struct WriterState: ~Copyable {
    enum Status { case disconnected, connected, closed }

    struct PongWaiter {
        var id: Int
        /// Nil for keep-alive PINGs and for flushes that already timed out.
        var continuation: CheckedContinuation<Void, any Error>?
    }

    var status = Status.disconnected
    var channel: (any Channel)?
    var out = ByteBufferAllocator().buffer(capacity: 64 * 1024)
    var writable = true
    var flushScheduled = false
    /// The server's `max_payload`; unknown (unlimited here) until the first `INFO`.
    var maxPayload = Int.max
    var pongWaiters = CircularBuffer<PongWaiter>()
    var nextPongID = 0
    var pingsOutstanding = 0
    var spaceWaiters: [CheckedContinuation<Void, any Error>] = []
}

/// Everything else: the server list, subscriptions, requests and event listeners.
struct ClientState: ~Copyable {
    enum Lifecycle { case idle, connecting, running, draining, closed }

    struct Subscription {
        var subject: String
        var queue: String?
        var max: Int?
        /// Also counts what was delivered (for `UNSUB <sid> <max>`).
        var buffer: SubscriptionBuffer
    }

    struct Request {
        var subject: String
        var continuation: CheckedContinuation<NATSMessage, any Error>
        var timer: Scheduled<Void>?
    }

    var lifecycle = Lifecycle.idle
    var servers: [ServerAddress]
    var currentServer: ServerAddress?
    var info: ServerInfo?
    var nextSID = 1
    var subscriptions: [Int: Subscription] = [:]
    /// The one wildcard inbox subscription shared by every request (`<prefix>.*`).
    var muxSID: Int?
    var requests: [String: Request] = [:]
    var nextRequestID: UInt64 = 0
    var eventSinks: [Int: AsyncStream<NATSEvent>.Continuation] = [:]
    var nextSinkID = 0
    var supervisor: Task<Void, Never>?
    var keepAlive: RepeatedTask?
    /// Why the current connection was lost, for the `disconnected` event.
    var disconnectReason: NATSError?
    /// Why the client closed, for the `closed` event.
    var closeError: NATSError?

    init(servers: [ServerAddress]) {
        self.servers = servers
    }
}
