import NIOCore

/// What the publishing hot path touches: the outbound bytes and the channel they go to.
/// Guarded by its own lock (`NATSClient.writer`) so publishers do not contend with message
/// delivery, which reads ``ClientState``.
///
/// `status` mirrors the ``ConnectionStateMachine`` for publishers: it is set when a connection
/// is activated (connected), lost (disconnected) and when the client shuts down (closed).
///
/// Lock order: `writer` may be held while taking `state` (to change a subscription and write
/// its `SUB` atomically with respect to a reconnect); `state` is never held while taking `writer`.
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
    var spaceWaiters: [CheckedContinuation<Void, any Error>] = []
}

/// Everything else: the connection's lifecycle (its state machine), subscriptions, requests,
/// event listeners and the timers and channel of the current connection. Guarded by
/// `NATSClient.state`; see ``WriterState`` for the lock order.
struct ClientState: ~Copyable {

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

    var machine: ConnectionStateMachine
    /// The server last connected to and its latest `INFO`.
    var currentServer: ServerAddress?
    var info: ServerInfo?
    /// The channel of the current attempt or connection (set once its TCP connection is up).
    var channel: (id: Int, channel: any Channel)?
    /// `connect()` waiting for the first handshake.
    var connectWaiter: CheckedContinuation<Void, any Error>?
    var reconnectTimer: Scheduled<Void>?
    /// Whether ``NATSClientOptions/connectedSocket`` was taken by an attempt (it serves one).
    var connectedSocketUsed = false
    /// The close of the last channel, set at shutdown: `close()` returns once it completed.
    var closingChannel: EventLoopFuture<Void>?
    /// `run()` calls waiting for the client to close.
    var closeWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
    var nextCloseWaiterID = 0
    var nextSID = 1
    var subscriptions: [Int: Subscription] = [:]
    /// The one wildcard inbox subscription shared by every request (`<prefix>.*`).
    var muxSID: Int?
    var requests: [String: Request] = [:]
    var nextRequestID: UInt64 = 0
    var eventSinks: [Int: AsyncStream<NATSEvent>.Continuation] = [:]
    var nextSinkID = 0
    var keepAlive: RepeatedTask?

    init(machine: ConnectionStateMachine) {
        self.machine = machine
    }

    var lifecycle: ConnectionStateMachine.Lifecycle { machine.lifecycle }
}
