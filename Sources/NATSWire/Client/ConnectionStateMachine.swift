import NIOCore

/// The life of a ``NATSClient``'s connection, as a value: events go in, actions come out.
///
/// It decides everything about the lifecycle (the handshake, when to reconnect and to which
/// server, how long to wait, when to give up, what a server `-ERR` means, when the
/// connection is stale) and does no I/O. ``ConnectionHandler`` and ``NATSClient`` feed it
/// events and carry out the actions it returns; its tests drive it without a socket.
///
/// Every connection attempt has an id. Events name the attempt they come from, so that
/// events of a connection the machine has already given up on (closed during connect, a
/// late `INFO` after `close()`) cannot touch the current one.
///
/// ```
/// idle ─connect─▶ connecting ─PONG─▶ connected ◀─PONG─┐
///                     │                │               │
///                     │          channel lost ─▶ reconnecting (timer, next server, next round)
///                     ▼                ▼               ▼
///   all servers failed / close / fatal -ERR / gave up ─▶ closed
///
/// connected | reconnecting ─drain─▶ draining(connected | reconnecting) ─drain done─▶ closed
/// ```
struct ConnectionStateMachine {
    struct Configuration {
        var allowReconnect = true
        /// Rounds over the server list before giving up; negative means forever.
        var maxReconnectAttempts = 60
        var reconnectWait = TimeAmount.seconds(2)
        var maxReconnectWait = TimeAmount.seconds(30)
        var maxPingsOutstanding = 2
        /// `NATSClientOptions.tls` is set: TLS is wanted on every server.
        var tlsConfigured = false
        /// TLS starts before the server's `INFO` (`handshakeFirst`).
        var tlsFirst = false
    }

    /// The handshake of one connection: `INFO` → [TLS] → `CONNECT`+`PING` → `PONG`.
    enum Handshake {
        case awaitingInfo
        /// TLS was started after the server's `INFO`; `CONNECT` waits for the TLS handshake.
        case tlsHandshake(ServerInfo)
        case awaitingPong(ServerInfo)
    }

    /// One connection attempt, from dialing to the handshake's `PONG`.
    struct Attempt {
        var id: Int
        var server: ServerAddress
        var handshake = Handshake.awaitingInfo
        /// Servers still to try after this one (in this round, when reconnecting).
        var remaining: ArraySlice<ServerAddress>
        /// Why this attempt failed, if it did; reported when the channel closes.
        var failure: NATSError?
    }

    /// An established connection.
    struct Connection {
        var id: Int
        var server: ServerAddress
        var info: ServerInfo
        var pingsOutstanding = 0
        /// Why the server is about to drop us (stale connection, `-ERR` it closes after).
        var lostReason: NATSError?
    }

    /// Between connections: waiting for the reconnect timer, or trying a round of servers.
    struct Reconnect {
        /// Rounds started so far.
        var round = 0
        /// The server last connected to: the next round starts after it.
        var lastServer: ServerAddress
        /// Nil while waiting for the timer.
        var attempt: Attempt?
        var lastError: NATSError?
    }

    /// Draining goes on whether or not the connection is up at the moment.
    enum Link {
        case connected(Connection)
        case reconnecting(Reconnect)
    }

    enum State {
        case idle
        /// The first `connect()`: each server once, in order.
        case connecting(Attempt)
        case connected(Connection)
        case reconnecting(Reconnect)
        /// `drain()` is under way: no new subscriptions; reconnects still happen.
        case draining(Link)
        case closed(NATSError?)
    }

    /// What losing a connection leads to.
    enum AfterLoss: Equatable {
        /// Wait this long (jitter is the caller's), then ``reconnectTimerFired()``.
        case reconnect(after: TimeAmount)
        /// Reconnecting is not allowed: close with the reason the connection was lost.
        case close
        /// `maxReconnectAttempts` is 0: close with this error after reporting the loss.
        case giveUp(NATSError)
    }

    enum Action {
        case none
        /// Open a TCP connection to `server` for attempt `id` (with TLS first if configured).
        case dial(ServerAddress, id: Int)
        /// Arm the handshake timer of the attempt's channel.
        case armHandshakeTimer
        /// Put TLS in front of the connection handler.
        case startTLS(ServerAddress)
        /// Write `CONNECT` (built for this `INFO`) and `PING`.
        case sendConnect(ServerInfo, ServerAddress)
        /// The handshake is done: re-send subscriptions, let buffered publishes flow, start the
        /// keep-alive, report `connected` (first time; `connect()` returns) or `reconnected`.
        /// `discovered` are servers learned from this `INFO`'s `connect_urls`.
        case activate(ServerInfo, ServerAddress, id: Int, reconnected: Bool, discovered: [String])
        /// An `INFO` on an established connection: new limits, learned servers, lame duck.
        case updateInfo(ServerInfo, from: ServerAddress, discovered: [String])
        /// A `PONG` on an established connection: it answers the oldest `PING`.
        case completePing
        /// Send a keep-alive `PING`.
        case sendPing
        /// Report a non-fatal error; the connection stays up.
        case reportError(NATSError)
        /// Close this channel (a failed handshake, a stale connection: `report` is emitted first).
        case closeChannel(report: NATSError?)
        /// The established connection is gone: detach it (later publishes are buffered), then…
        case connectionLost(reason: NATSError?, then: AfterLoss)
        /// The first `connect()` failed for good: close the client, `connect()` throws this.
        case failConnect(NATSError)
        /// Wait this long (jitter is the caller's), then ``reconnectTimerFired()``.
        case scheduleReconnect(after: TimeAmount)
        /// Close the client now: fail waiters, end subscriptions, close any channel and timer.
        /// `report` is emitted as an error event first (a fatal server `-ERR`).
        case shutdown(NATSError?, report: Bool)
        /// `drain()` may go ahead.
        case startDrain
        /// Refuse the call that caused the event with this error.
        case reject(NATSError)
    }

    /// The lifecycle as the rest of the client sees it (what may be called when).
    enum Lifecycle { case idle, connecting, running, draining, closed }

    let configuration: Configuration
    private(set) var state = State.idle
    /// Configured servers, then those learned from `connect_urls`.
    private(set) var servers: [ServerAddress]
    private var nextAttemptID = 0

    init(servers: [ServerAddress], configuration: Configuration) {
        self.servers = servers
        self.configuration = configuration
    }

    var lifecycle: Lifecycle {
        switch state {
        case .idle: .idle
        case .connecting: .connecting
        case .connected, .reconnecting: .running
        case .draining: .draining
        case .closed: .closed
        }
    }

    /// The id of the attempt or connection that events are accepted from.
    var currentID: Int? {
        switch state {
        case .connecting(let attempt): attempt.id
        case .connected(let connection), .draining(.connected(let connection)): connection.id
        case .reconnecting(let reconnect), .draining(.reconnecting(let reconnect)): reconnect.attempt?.id
        case .idle, .closed: nil
        }
    }

    /// The server of the established connection, if one is up.
    var connectedServer: ServerAddress? {
        switch state {
        case .connected(let connection), .draining(.connected(let connection)): connection.server
        default: nil
        }
    }

    // MARK: Events from the caller

    /// `connect()`: try the first server.
    mutating func connectRequested() -> Action {
        switch state {
        case .idle:
            guard let first = servers.first else {
                return .reject(.connectionFailed(servers: [], reason: "no server to try"))
            }
            let attempt = makeAttempt(first, remaining: servers.dropFirst())
            state = .connecting(attempt)
            return .dial(first, id: attempt.id)
        case .closed:
            return .reject(.connectionClosed)
        case .connecting, .connected, .reconnecting, .draining:
            return .reject(.unsupported("connect() was already called on this client"))
        }
    }

    /// `close()`: everything stops now.
    mutating func closeRequested() -> Action {
        if case .closed = state { return .none }
        state = .closed(nil)
        return .shutdown(nil, report: false)
    }

    /// `drain()`: allowed while running (connected or reconnecting), once.
    mutating func drainRequested() -> Action {
        switch state {
        case .connected(let connection):
            state = .draining(.connected(connection))
            return .startDrain
        case .reconnecting(let reconnect):
            state = .draining(.reconnecting(reconnect))
            return .startDrain
        case .idle, .connecting, .draining, .closed:
            return .reject(.connectionClosed)
        }
    }

    /// The drain finished (or timed out): close.
    mutating func drainCompleted() -> Action {
        guard case .draining = state else { return .none }
        state = .closed(nil)
        return .shutdown(nil, report: false)
    }

    // MARK: Events from a connection

    /// The TCP connection of attempt `id` is up.
    mutating func channelActive(id: Int) -> Action {
        if let attempt = currentAttempt, attempt.id == id { return .armHandshakeTimer }
        if let connection = currentConnection, connection.id == id { return .none }
        return .closeChannel(report: nil)  // an attempt given up on (closed, timed out)
    }

    /// The TCP connection of attempt `id` could not be opened.
    mutating func dialFailed(id: Int, error: NATSError) -> Action {
        guard var attempt = currentAttempt, attempt.id == id else { return .none }
        attempt.failure = attempt.failure ?? error
        return attemptEnded(attempt)
    }

    mutating func infoReceived(_ info: ServerInfo, id: Int) -> Action {
        if var attempt = currentAttempt, attempt.id == id {
            switch attempt.handshake {
            case .awaitingInfo:
                let server = attempt.server
                let clientWants = server.tls || configuration.tlsConfigured
                if !configuration.tlsFirst && clientWants && !(info.tlsRequired || info.tlsAvailable) {
                    return failAttempt(attempt, .tlsFailed(
                        server: server.description, reason: "TLS was requested but the server does not offer it"))
                }
                if !configuration.tlsFirst && (clientWants || info.tlsRequired) {
                    attempt.handshake = .tlsHandshake(info)
                    currentAttempt = attempt
                    return .startTLS(server)
                }
                attempt.handshake = .awaitingPong(info)
                currentAttempt = attempt
                return .sendConnect(info, server)
            case .awaitingPong:
                attempt.handshake = .awaitingPong(info)
                currentAttempt = attempt
                return .none
            case .tlsHandshake:
                return .none  // nothing may arrive in clear after INFO
            }
        }
        guard var connection = currentConnection, connection.id == id else {
            if case .closed = state { return .closeChannel(report: nil) }
            return .none
        }
        connection.info = info
        currentConnection = connection
        return .updateInfo(info, from: connection.server, discovered: learnServers(from: info, via: connection.server))
    }

    /// TLS is up on attempt `id` (started after `INFO`): now `CONNECT`.
    mutating func tlsEstablished(id: Int) -> Action {
        guard var attempt = currentAttempt, attempt.id == id, case .tlsHandshake(let info) = attempt.handshake else {
            return .none
        }
        attempt.handshake = .awaitingPong(info)
        currentAttempt = attempt
        return .sendConnect(info, attempt.server)
    }

    mutating func pongReceived(id: Int) -> Action {
        if let attempt = currentAttempt, attempt.id == id {
            guard case .awaitingPong(let info) = attempt.handshake else { return .none }
            let connection = Connection(id: id, server: attempt.server, info: info)
            let reconnected: Bool
            switch state {
            case .connecting:
                state = .connected(connection)
                reconnected = false
            case .reconnecting:
                state = .connected(connection)
                reconnected = true
            case .draining(.reconnecting):
                state = .draining(.connected(connection))
                reconnected = true
            case .idle, .connected, .draining(.connected), .closed:
                preconditionFailure("an attempt is current only while connecting or reconnecting")
            }
            let discovered = learnServers(from: info, via: connection.server)
            return .activate(info, connection.server, id: id, reconnected: reconnected, discovered: discovered)
        }
        guard var connection = currentConnection, connection.id == id else { return .none }
        connection.pingsOutstanding = 0
        currentConnection = connection
        return .completePing
    }

    /// A `-ERR` from the server.
    mutating func errorReceived(_ message: String, id: Int) -> Action {
        if let attempt = currentAttempt, attempt.id == id {
            return failAttempt(attempt, Self.handshakeError(message, server: attempt.server))
        }
        guard var connection = currentConnection, connection.id == id else { return .none }
        let lower = message.lowercased()
        if lower.hasPrefix("permissions violation") {
            return .reportError(.permissionViolation(message))
        }
        if lower.hasPrefix("invalid subject") || lower.hasPrefix("invalid publish subject") {
            return .reportError(.serverError(message))
        }
        if lower.contains("stale connection") || lower.contains("maximum connections exceeded")
            || lower.contains("slow consumer")
        {
            // The server closes the connection after this one; we reconnect then.
            connection.lostReason = connection.lostReason ?? .serverError(message)
            currentConnection = connection
            return .reportError(.serverError(message))
        }
        let error: NATSError = lower.contains("authorization") || lower.contains("authentication")
            ? .authorizationFailed(server: connection.server.description, message: message)
            : .serverError(message)
        state = .closed(error)
        return .shutdown(error, report: true)
    }

    /// The channel of attempt or connection `id` closed; `error` is why, when the handler knows.
    mutating func channelInactive(id: Int, error: NATSError?) -> Action {
        if var attempt = currentAttempt, attempt.id == id {
            attempt.failure = attempt.failure ?? error
            return attemptEnded(attempt)
        }
        guard let connection = currentConnection, connection.id == id else { return .none }
        let reason = error ?? connection.lostReason
        guard configuration.allowReconnect else {
            state = .closed(reason)
            return .connectionLost(reason: reason, then: .close)
        }
        return .connectionLost(reason: reason, then: startRound(Reconnect(lastServer: connection.server)))
    }

    /// The wait between reconnect rounds is over: try the servers, starting after the one lost.
    mutating func reconnectTimerFired() -> Action {
        guard var reconnect = currentReconnect, reconnect.attempt == nil else { return .none }
        reconnect.round += 1
        var order = servers[...]
        if let index = servers.firstIndex(where: { $0.host == reconnect.lastServer.host && $0.port == reconnect.lastServer.port }) {
            order = servers[(index + 1)...] + servers[...index]
        }
        guard let first = order.first else { return .none }
        let attempt = makeAttempt(first, remaining: order.dropFirst())
        reconnect.attempt = attempt
        currentReconnect = reconnect
        return .dial(first, id: attempt.id)
    }

    /// Keep-alive: a `PING` per interval; too many unanswered and the connection is stale.
    mutating func pingTimerFired(id: Int) -> Action {
        guard var connection = currentConnection, connection.id == id else { return .none }
        if connection.pingsOutstanding >= configuration.maxPingsOutstanding {
            connection.lostReason = .staleConnection
            currentConnection = connection
            return .closeChannel(report: .staleConnection)
        }
        connection.pingsOutstanding += 1
        currentConnection = connection
        return .sendPing
    }

    // MARK: Transitions shared by several events

    private mutating func makeAttempt(_ server: ServerAddress, remaining: ArraySlice<ServerAddress>) -> Attempt {
        nextAttemptID += 1
        return Attempt(id: nextAttemptID, server: server, remaining: remaining)
    }

    /// Records why the attempt failed and closes its channel; ``channelInactive(id:error:)`` moves on.
    private mutating func failAttempt(_ attempt: Attempt, _ error: NATSError) -> Action {
        var attempt = attempt
        attempt.failure = attempt.failure ?? error
        currentAttempt = attempt
        return .closeChannel(report: nil)
    }

    /// The current attempt is over without a connection: the next server, a new round, or the end.
    private mutating func attemptEnded(_ attempt: Attempt) -> Action {
        let error = Self.attemptError(attempt.failure, server: attempt.server)
        switch state {
        case .connecting:
            if error.code == .authorizationFailed { return failConnect(error) }
            if let next = attempt.remaining.first {
                let nextAttempt = makeAttempt(next, remaining: attempt.remaining.dropFirst())
                state = .connecting(nextAttempt)
                return .dial(next, id: nextAttempt.id)
            }
            if servers.count == 1 { return failConnect(error) }
            return failConnect(.connectionFailed(servers: servers.map(\.description), reason: "\(error)"))
        case .reconnecting(var reconnect), .draining(.reconnecting(var reconnect)):
            reconnect.lastError = error
            if let next = attempt.remaining.first {
                let nextAttempt = makeAttempt(next, remaining: attempt.remaining.dropFirst())
                reconnect.attempt = nextAttempt
                currentReconnect = reconnect
                return .dial(next, id: nextAttempt.id)
            }
            reconnect.attempt = nil
            switch startRound(reconnect) {
            case .reconnect(let wait): return .scheduleReconnect(after: wait)
            case .giveUp(let error): return .shutdown(error, report: false)
            case .close: preconditionFailure("startRound never closes without an error")
            }
        case .idle, .connected, .draining(.connected), .closed:
            preconditionFailure("an attempt is current only while connecting or reconnecting")
        }
    }

    private mutating func failConnect(_ error: NATSError) -> Action {
        state = .closed(error)
        return .failConnect(error)
    }

    /// Waits before the next round, or gives up after `maxReconnectAttempts` rounds.
    private mutating func startRound(_ reconnect: Reconnect) -> AfterLoss {
        let limit = configuration.maxReconnectAttempts
        if limit >= 0 && reconnect.round >= limit {
            let error = NATSError.connectionFailed(
                servers: servers.map(\.description),
                reason: "gave up after \(reconnect.round) reconnect rounds: \(reconnect.lastError.map { "\($0)" } ?? "")")
            state = .closed(error)
            return .giveUp(error)
        }
        currentReconnect = reconnect
        return .reconnect(after: backoff(afterRounds: reconnect.round))
    }

    /// `reconnectWait` doubled per round already made, at most `maxReconnectWait` (jitter is added by the caller).
    func backoff(afterRounds rounds: Int) -> TimeAmount {
        let wait = configuration.reconnectWait.nanoseconds << min(rounds, 20)
        return .nanoseconds(max(0, min(wait, configuration.maxReconnectWait.nanoseconds)))
    }

    /// Adds the servers of `connect_urls` to the list (a cluster tells clients about its members);
    /// `origin`'s credentials and TLS setting carry over, as nats.go does. Returns those added.
    private mutating func learnServers(from info: ServerInfo, via origin: ServerAddress) -> [String] {
        var added: [String] = []
        for url in info.connectURLs {
            guard let address = try? ServerAddress(parsing: url, discovered: true) else { continue }
            if !servers.contains(where: { $0.host == address.host && $0.port == address.port }) {
                var learned = address
                learned.tls = origin.tls
                learned.user = origin.user
                learned.password = origin.password
                servers.append(learned)
                added.append(learned.description)
            }
        }
        return added
    }

    // MARK: The current attempt, connection or reconnect, whatever the state around it

    private var currentAttempt: Attempt? {
        get {
            switch state {
            case .connecting(let attempt): attempt
            case .reconnecting(let reconnect), .draining(.reconnecting(let reconnect)): reconnect.attempt
            case .idle, .connected, .draining(.connected), .closed: nil
            }
        }
        set {
            guard let newValue else { preconditionFailure("an attempt is only replaced, never removed, here") }
            switch state {
            case .connecting: state = .connecting(newValue)
            case .reconnecting(var reconnect):
                reconnect.attempt = newValue
                state = .reconnecting(reconnect)
            case .draining(.reconnecting(var reconnect)):
                reconnect.attempt = newValue
                state = .draining(.reconnecting(reconnect))
            case .idle, .connected, .draining(.connected), .closed:
                preconditionFailure("no attempt in \(state)")
            }
        }
    }

    private var currentConnection: Connection? {
        get {
            switch state {
            case .connected(let connection), .draining(.connected(let connection)): connection
            case .idle, .connecting, .reconnecting, .draining(.reconnecting), .closed: nil
            }
        }
        set {
            guard let newValue else { preconditionFailure("a connection is only replaced, never removed, here") }
            switch state {
            case .connected: state = .connected(newValue)
            case .draining(.connected): state = .draining(.connected(newValue))
            case .idle, .connecting, .reconnecting, .draining(.reconnecting), .closed:
                preconditionFailure("no connection in \(state)")
            }
        }
    }

    /// Setting it moves a connected (or draining) client to reconnecting, still draining if it was.
    private var currentReconnect: Reconnect? {
        get {
            switch state {
            case .reconnecting(let reconnect), .draining(.reconnecting(let reconnect)): reconnect
            case .idle, .connecting, .connected, .draining(.connected), .closed: nil
            }
        }
        set {
            guard let newValue else { preconditionFailure("a reconnect is only replaced, never removed, here") }
            switch state {
            case .connected, .reconnecting: state = .reconnecting(newValue)
            case .draining: state = .draining(.reconnecting(newValue))
            case .idle, .connecting, .closed: preconditionFailure("no reconnect from \(state)")
            }
        }
    }

    // MARK: Errors

    /// The error an attempt reports: one that names the server as is, anything else wrapped.
    static func attemptError(_ failure: NATSError?, server: ServerAddress) -> NATSError {
        guard let failure else {
            return .connectionFailed(
                servers: [server.description], reason: "the server closed the connection during the handshake")
        }
        return failure.namesServer ? failure : .connectionFailed(servers: [server.description], reason: "\(failure)")
    }

    /// A `-ERR` during the handshake: refused credentials, or a refused connection.
    static func handshakeError(_ message: String, server: ServerAddress) -> NATSError {
        let lower = message.lowercased()
        if lower.contains("authorization") || lower.contains("authentication") || lower.contains("user") {
            return .authorizationFailed(server: server.description, message: message)
        }
        return .connectionFailed(servers: [server.description], reason: message)
    }
}
