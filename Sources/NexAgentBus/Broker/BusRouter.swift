import NIOCore
import NATSWire

/// The broker's shared state: users, clients and subscriptions. Confined to the bus's
/// event loop (every channel of the bus is on that loop), so it needs no locks; ``AgentBus``
/// only touches it from there (`eventLoop.submit`).
final class BusRouter: @unchecked Sendable {
    let eventLoop: any EventLoop
    let limits: BusLimits
    let serverID: String
    private(set) var users: [String: BusUser] = [:]
    private var clients: [ObjectIdentifier: BusClientHandler] = [:]
    /// Publish budgets of untrusted users that have published.
    private var budgets: [String: PublishBudget] = [:]
    /// The node's in-process links (``AgentBus/link()``).
    private var links: [ObjectIdentifier: BusLinkPeer] = [:]
    /// Trusted peers whose output queue is past its high-water mark.
    private var backedUpTrusted: Set<ObjectIdentifier> = []
    /// Told when a trusted connection closes (not during ``shutDown()``).
    var onTrustedLinkLoss: (TrustedLinkLoss) -> Void = { _ in }
    private(set) var isShuttingDown = false
    private var bufferedInputBytes = 0
    private var counters = BusStatistics()
    /// Authenticated connections per user key.
    private var connectionsPerUser: [String: Int] = [:]
    /// Connections not authenticated yet, oldest first.
    private var unauthenticated: [BusClientHandler] = []
    private var subscriptions: [BusSubscription] = [] {
        didSet { subscriptionsChanged() }
    }
    /// The subscriptions that can match an `_INBOX.` subject (their first token is `_INBOX`,
    /// `*` or `>`): a reply is matched against these few, not against every agent's.
    private var inboxCandidates: [BusSubscription] = []
    /// Subject → matching subscriptions; cleared whenever subscriptions change.
    private var matchCache: [String: [BusSubscription]] = [:]
    private static let matchCacheLimit = 8192
    private static let inboxPrefix = "_INBOX.".utf8
    private static let inboxToken = "_INBOX".utf8
    /// Clients written to during the current read; flushed when it completes.
    private var dirty: [any BusPeer] = []
    private var nextClientID: UInt64 = 1

    init(eventLoop: any EventLoop, limits: BusLimits, serverID: String) {
        self.eventLoop = eventLoop
        self.limits = limits
        self.serverID = serverID
    }

    var clientCount: Int { clients.count }

    func makeClientID() -> UInt64 {
        defer { nextClientID += 1 }
        return nextClientID
    }

    // MARK: Users

    func setUser(_ publicKey: String, _ user: BusUser) {
        users[publicKey] = user
    }

    /// Removes a user and closes its connections.
    func removeUser(_ publicKey: String) {
        users[publicKey] = nil
        budgets[publicKey] = nil
        // Closing can end a connection synchronously (and unregister it): iterate a copy.
        for client in Array(clients.values) where client.userKey == publicKey {
            client.close(error: "Authorization Violation: user removed")
        }
    }

    // MARK: Clients

    func register(_ client: BusClientHandler) -> Bool {
        if unauthenticated.count >= limits.maxUnauthenticatedConnections, let oldest = unauthenticated.first {
            counters.unauthenticatedEvicted += 1
            oldest.close(error: "Authentication Timeout")  // unregisters it, synchronously or soon
            unauthenticated.removeAll { $0 === oldest }
        }
        guard clients.count < limits.maxConnections else { return false }
        clients[ObjectIdentifier(client)] = client
        unauthenticated.append(client)
        return true
    }

    /// `client` authenticated: it no longer counts against ``BusLimits/maxUnauthenticatedConnections``.
    func authenticated(_ client: BusClientHandler) {
        unauthenticated.removeAll { $0 === client }
    }

    /// Counts an authenticated connection of `user`; false when the user already holds as
    /// many as ``BusLimits/maxConnectionsPerUser`` (trusted users are never limited).
    func admit(user: String, _ granted: BusUser) -> Bool {
        let current = connectionsPerUser[user, default: 0]
        guard granted.isTrusted || current < limits.maxConnectionsPerUser else { return false }
        connectionsPerUser[user] = current + 1
        return true
    }

    /// Whether untrusted publishers are paused because a trusted connection is behind.
    var isTrustedBackedUp: Bool { !backedUpTrusted.isEmpty }

    func unregister(_ client: BusClientHandler) {
        unauthenticated.removeAll { $0 === client }
        guard clients.removeValue(forKey: ObjectIdentifier(client)) != nil else { return }
        if let user = client.admittedUser {
            connectionsPerUser[user] = max(0, connectionsPerUser[user, default: 1] - 1)
            if connectionsPerUser[user] == 0 { connectionsPerUser[user] = nil }
        }
        if subscriptions.contains(where: { $0.client === client }) { subscriptions.removeAll { $0.client === client } }
        dirty.removeAll { $0 === client }
        trustedWritabilityChanged(client, isWritable: true)
        if client.isTrusted, !isShuttingDown, let user = client.userKey {
            onTrustedLinkLoss(TrustedLinkLoss(publicKey: user, clientID: client.clientID,
                                              reason: client.closeReason ?? "closed by the client"))
        }
    }

    /// Closes every connection and link without reporting trusted ones as lost.
    func shutDown() {
        isShuttingDown = true
        for client in Array(clients.values) { client.close(error: nil) }
        for link in Array(links.values) { link.close() }
    }

    // MARK: Links

    func register(_ link: BusLinkPeer) {
        links[ObjectIdentifier(link)] = link
    }

    /// A link closed: its subscriptions go, and untrusted publishers no longer wait for it.
    func unregister(_ link: BusLinkPeer) {
        guard links.removeValue(forKey: ObjectIdentifier(link)) != nil else { return }
        if subscriptions.contains(where: { $0.client === link }) { subscriptions.removeAll { $0.client === link } }
        dirty.removeAll { $0 === link }
        trustedWritabilityChanged(link, isWritable: true)
    }

    // MARK: Flow control

    /// A trusted connection's output queue passed its high-water mark (or drained below the
    /// low one): pause (or resume) reading from every untrusted publisher. Nothing is dropped,
    /// and what waits for the trusted link is bounded by one read per publisher.
    func trustedWritabilityChanged(_ client: any BusPeer, isWritable: Bool) {
        let wasBackedUp = isTrustedBackedUp
        if isWritable {
            backedUpTrusted.remove(ObjectIdentifier(client))
        } else if client.isTrusted {
            backedUpTrusted.insert(ObjectIdentifier(client))
        }
        guard wasBackedUp != isTrustedBackedUp else { return }
        if isTrustedBackedUp { counters.trustedBackpressurePauses += 1 }
        for other in Array(clients.values) where other.userKey != nil && !other.isTrusted {
            if isTrustedBackedUp { other.pause(.trustedBackedUp) } else { other.resume(.trustedBackedUp) }
        }
    }

    /// Spends from `user`'s publish budget.
    func spend(user: String, bytes: Int) {
        if budgets[user] == nil { budgets[user] = PublishBudget(limits: limits, now: .now()) }
        budgets[user]!.spend(bytes: bytes)
    }

    /// How long `user` must wait before it may publish again; nil when it may go on.
    func publishWait(user: String) -> TimeAmount? {
        budgets[user]?.wait(now: .now())
    }

    // MARK: Statistics

    func inputBuffered(changedBy delta: Int) {
        bufferedInputBytes += delta
        counters.peakBufferedInputBytes = max(counters.peakBufferedInputBytes, bufferedInputBytes)
    }

    func countClosedBeforeAuthentication() { counters.closedBeforeAuthentication += 1 }
    func countSlowConsumer() { counters.slowConsumersClosed += 1 }
    func countThrottle() { counters.publishThrottles += 1 }

    func statistics() -> BusStatistics {
        var statistics = counters
        statistics.connections = clients.count
        statistics.authenticatedConnections = clients.values.count(where: { $0.userKey != nil })
        statistics.bufferedInputBytes = bufferedInputBytes
        statistics.pendingOutputBytes = clients.values.reduce(0) { $0 + $1.pendingOutputBytes }
            + links.values.reduce(0) { $0 + $1.queuedBytes }
        return statistics
    }

    // MARK: Subscriptions

    func add(_ subscription: BusSubscription) {
        subscriptions.append(subscription)
    }

    func remove(_ subscription: BusSubscription) {
        subscriptions.removeAll { $0 === subscription }
    }

    private func subscriptionsChanged() {
        matchCache.removeAll(keepingCapacity: true)
        inboxCandidates = subscriptions.filter { subscription in
            let first = subscription.pattern.utf8.prefix { $0 != UInt8(ascii: ".") }
            return first.elementsEqual(Self.inboxToken) || first.elementsEqual("*".utf8) || first.elementsEqual(">".utf8)
        }
    }

    private func matching(_ subject: String) -> [BusSubscription] {
        // A reply subject is used once: caching it would only push out the subjects that recur.
        if subject.utf8.starts(with: Self.inboxPrefix) {
            return inboxCandidates.filter { SubjectPattern.matches($0.pattern, subject) }
        }
        if let cached = matchCache[subject] { return cached }
        let found = subscriptions.filter { SubjectPattern.matches($0.pattern, subject) }
        if matchCache.count >= Self.matchCacheLimit { matchCache.removeAll(keepingCapacity: true) }
        matchCache[subject] = found
        return found
    }

    // MARK: Routing

    /// Delivers a message to every matching subscription, one member per queue group.
    func route(subject: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer,
               from publisher: any BusPeer) {
        counters.messagesPublished &+= 1
        counters.bytesPublished &+= payload.readableBytes
        let targets = matching(subject)
        guard !targets.isEmpty else {
            // A request nobody can answer: tell the requester at once (status 503), as
            // nats-server does for clients that asked for it, instead of letting it time out.
            if let replyTo, publisher.wantsNoResponders {
                for subscription in matching(replyTo) where subscription.client === publisher {
                    var ended: [BusSubscription] = []
                    deliver(subscription, subject: replyTo, replyTo: nil, headers: NATSHeaders(status: 503),
                            payload: ByteBuffer(), ended: &ended)
                    for done in ended { done.client.forget(done); remove(done) }
                    break
                }
            }
            return
        }
        var groups: [String: [BusSubscription]]?
        var ended: [BusSubscription] = []
        for subscription in targets {
            if let queue = subscription.queue {
                groups = groups ?? [:]
                groups![queue, default: []].append(subscription)
                continue
            }
            if subscription.client === publisher && !publisher.echo { continue }
            deliver(subscription, subject: subject, replyTo: replyTo, headers: headers, payload: payload, ended: &ended)
        }
        for members in (groups ?? [:]).values {
            let eligible = members.filter { $0.client !== publisher || publisher.echo }
            guard let chosen = eligible.randomElement() else { continue }
            deliver(chosen, subject: subject, replyTo: replyTo, headers: headers, payload: payload, ended: &ended)
        }
        for subscription in ended {
            subscription.client.forget(subscription)
            remove(subscription)
        }
    }

    private func deliver(_ subscription: BusSubscription, subject: String, replyTo: String?,
                         headers: NATSHeaders?, payload: ByteBuffer, ended: inout [BusSubscription]) {
        let client = subscription.client
        guard client.deliver(subject: subject, sid: subscription.sid, replyTo: replyTo, headers: headers,
                             payload: payload)
        else { return }
        if !client.isDirty {
            client.isDirty = true
            dirty.append(client)
        }
        if let remaining = subscription.remaining {
            subscription.remaining = remaining - 1
            if remaining - 1 <= 0 { ended.append(subscription) }
        }
    }

    /// Flushes every client written to since the last call.
    func flushDirty() {
        guard !dirty.isEmpty else { return }
        let clients = dirty  // a flush may close a client, which unregisters it
        dirty.removeAll(keepingCapacity: true)
        for client in clients {
            client.isDirty = false
            client.flush()
        }
    }
}
