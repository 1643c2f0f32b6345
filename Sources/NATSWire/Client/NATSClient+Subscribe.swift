extension NATSClient {
    /// Subscribes to `subject` (wildcards allowed), optionally in a queue group.
    ///
    /// Messages are buffered up to `pendingMessages`/`pendingBytes` (defaults from the options);
    /// past that they are dropped, counted in ``NATSSubscription/droppedMessages`` and reported
    /// once per episode as ``NATSEvent/slowConsumer(subject:sid:dropped:)``.
    public func subscribe(
        to subject: String, queue: String? = nil, pendingMessages: Int? = nil, pendingBytes: Int? = nil
    ) async throws -> NATSSubscription {
        try NATSSubject.validateSubscribe(subject)
        if let queue { try NATSSubject.validateQueue(queue) }
        let buffer = SubscriptionBuffer(
            maxMessages: max(1, pendingMessages ?? options.subscriptionPendingMessages),
            maxBytes: max(1, pendingBytes ?? options.subscriptionPendingBytes))
        let sid = try register { s throws(NATSError) in
            guard s.lifecycle == .running || s.lifecycle == .connecting else {
                throw s.lifecycle == .draining ? NATSError.unsupported("subscribe while draining") : NATSError.connectionClosed
            }
            let sid = s.nextSID
            s.nextSID += 1
            s.subscriptions[sid] = .init(subject: subject, queue: queue, buffer: buffer)
            return sid
        } write: { sid, out in
            out.writeSubscribe(subject: subject, queue: queue, sid: sid)
        }
        return NATSSubscription(subject: subject, queue: queue, sid: sid, buffer: buffer, client: self)
    }

    /// Changes the client state and, when connected, writes the matching protocol line in the
    /// same critical section, so a reconnect in between can neither miss nor repeat it.
    func register<T>(
        _ change: (inout ClientState) throws(NATSError) -> T, write: (T, inout ByteBuffer) -> Void
    ) throws(NATSError) -> T {
        let (value, schedule) = try writer.withLock { w throws(NATSError) -> (T, Bool) in
            let value = try state.withLock { s throws(NATSError) in try change(&s) }
            guard w.status == .connected else { return (value, false) }
            write(value, &w.out)
            defer { w.flushScheduled = true }
            return (value, !w.flushScheduled)
        }
        if schedule { scheduleFlush() }
        return value
    }

    func drain(_ subscription: NATSSubscription, timeout: Duration) async throws {
        let sid = subscription.sid
        try register { s throws(NATSError) -> Void in
            guard s.subscriptions[sid] != nil else { throw NATSError.subscriptionClosed(subject: subscription.subject) }
        } write: { _, out in
            out.writeUnsubscribe(sid: sid, max: nil)
        }
        defer {
            state.withLock { s in _ = s.subscriptions.removeValue(forKey: sid) }
            subscription.buffer.finish()
        }
        // Once the PONG is back, the server has delivered everything it routed to this sid.
        try await flush(timeout: timeout)
    }

    func unsubscribe(_ subscription: NATSSubscription, after max: Int?) throws {
        if let max, max < 0 { throw NATSError.invalidSubject(subscription.subject, reason: "max messages must be >= 0") }
        let sid = subscription.sid
        let finished = try register { s throws(NATSError) -> Bool in
            guard var entry = s.subscriptions[sid] else { throw NATSError.subscriptionClosed(subject: subscription.subject) }
            if let max, entry.buffer.deliveredCount < max {
                entry.max = max
                s.subscriptions[sid] = entry
                return false
            }
            s.subscriptions[sid] = nil
            return true
        } write: { finished, out in
            out.writeUnsubscribe(sid: sid, max: finished ? nil : max)
        }
        if finished { subscription.buffer.finish() }
    }
}

import NIOCore
