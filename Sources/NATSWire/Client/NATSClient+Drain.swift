import NIOCore

extension NATSClient {
    /// Finishes in-flight work, then closes: unsubscribes everything (the server sends what it
    /// already routed), lets each subscription's consumer take the messages still buffered,
    /// waits for pending requests, sends every buffered publish, and closes.
    ///
    /// Throws ``NATSError/timeout(operation:seconds:)`` if consumers or requests are not done
    /// within `timeout` (default ``NATSClientOptions/drainTimeout``); the client is closed either way.
    public func drain(timeout: Duration? = nil) async throws {
        let timeout = TimeAmount(timeout ?? options.drainTimeout)
        let deadline = NIODeadline.now() + timeout
        let subscriptions = try register { s throws(NATSError) -> [(sid: Int, buffer: SubscriptionBuffer)] in
            if case .reject(let error) = s.machine.drainRequested() { throw error }
            return s.subscriptions.map { (sid: $0.key, buffer: $0.value.buffer) }
        } write: { subscriptions, out in
            for subscription in subscriptions { out.writeUnsubscribe(sid: subscription.sid, max: nil) }
        }
        // Once the PONG is back, the server has delivered everything routed to those subscriptions.
        try? await flush(timeout: Duration(timeout))
        state.withLock { s in
            for subscription in subscriptions { s.subscriptions[subscription.sid] = nil }
        }
        for subscription in subscriptions { subscription.buffer.finish() }

        var finished = false
        while NIODeadline.now() < deadline {
            let busy = subscriptions.contains { $0.buffer.pendingCount > 0 } || state.withLock { !$0.requests.isEmpty }
            if !busy {
                finished = true
                break
            }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        try? await flush(timeout: Duration(max(.milliseconds(1), deadline - NIODeadline.now())))
        await finish { $0.drainCompleted() }
        if !finished {
            throw NATSError.timeout(operation: "drain", seconds: Double(timeout.nanoseconds) / 1e9)
        }
    }
}
