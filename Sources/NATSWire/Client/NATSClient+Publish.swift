import NIOCore

extension NATSClient {
    /// Publishes `payload` to `subject`, optionally with a reply subject and headers.
    ///
    /// Returns once the message is in the outbound buffer (it is written in the next batch).
    /// While disconnected, messages are kept up to ``NATSClientOptions/reconnectBufferSize``
    /// and sent after reconnecting. Throws for an invalid subject or header, a message larger
    /// than the server's `max_payload`, a full reconnect buffer, or a closed client.
    @inlinable
    public func publish(
        _ payload: ByteBuffer, to subject: String, replyTo: String? = nil, headers: NATSHeaders? = nil
    ) async throws {
        // Inlined into the caller, so the common case (no wait) costs no extra async frame.
        if try enqueuePublish(subject: subject, replyTo: replyTo, headers: headers, payload: payload) {
            try await waitForOutboundSpace()
        }
    }

    /// Publishes bytes. See ``publish(_:to:replyTo:headers:)-(ByteBuffer,_,_,_)``.
    public func publish(
        _ payload: [UInt8], to subject: String, replyTo: String? = nil, headers: NATSHeaders? = nil
    ) async throws {
        let mustWait = try payload.withUnsafeBytes { bytes throws(NATSError) in
            try enqueuePublish(subject: subject, replyTo: replyTo, headers: headers, payload: bytes)
        }
        if mustWait { try await waitForOutboundSpace() }
    }

    /// Publishes UTF-8 text. See ``publish(_:to:replyTo:headers:)-(ByteBuffer,_,_,_)``.
    public func publish(
        _ payload: String, to subject: String, replyTo: String? = nil, headers: NATSHeaders? = nil
    ) async throws {
        try await publish(Array(payload.utf8), to: subject, replyTo: replyTo, headers: headers)
    }

    /// Appends one `PUB`/`HPUB` to the outbound buffer. Returns true when the buffer is past
    /// its limit and the caller should wait for the socket to catch up.
    @usableFromInline
    func enqueuePublish(
        subject: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer
    ) throws(NATSError) -> Bool {
        try payload.withUnsafeReadableBytes { bytes throws(NATSError) in
            try enqueuePublish(subject: subject, replyTo: replyTo, headers: headers, payload: bytes)
        }
    }

    func enqueuePublish(
        subject: String, replyTo: String?, headers: NATSHeaders?, payload: UnsafeRawBufferPointer
    ) throws(NATSError) -> Bool {
        try NATSSubject.validatePublish(subject)
        if let replyTo { try NATSSubject.validatePublish(replyTo) }
        let size: Int
        if let headers {
            try headers.validate()
            size = headers.encodedSize + payload.count
        } else {
            size = payload.count
        }
        let (schedule, mustWait) = try writer.withLock { w throws(NATSError) -> (Bool, Bool) in
            guard size <= w.maxPayload else { throw NATSError.payloadTooLarge(size: size, maxPayload: w.maxPayload) }
            switch w.status {
            case .closed:
                throw NATSError.connectionClosed
            case .disconnected:
                guard w.out.readableBytes + size <= options.reconnectBufferSize else {
                    throw NATSError.reconnectBufferFull(limit: options.reconnectBufferSize)
                }
                w.out.writePublish(subject: subject, replyTo: replyTo, headers: headers, payload: payload)
                return (false, false)
            case .connected:
                w.out.writePublish(subject: subject, replyTo: replyTo, headers: headers, payload: payload)
                let schedule = !w.flushScheduled
                w.flushScheduled = true
                return (schedule, w.out.readableBytes > options.maxPendingOutboundBytes)
            }
        }
        if schedule { scheduleFlush() }
        return mustWait
    }

    /// Appends raw protocol bytes (SUB, UNSUB, PING) when connected; while disconnected they are
    /// dropped, because reconnecting re-sends subscriptions from the client's state.
    func enqueueControl(_ write: (inout ByteBuffer) -> Void) {
        let schedule = writer.withLock { w -> Bool in
            guard w.status == .connected else { return false }
            write(&w.out)
            defer { w.flushScheduled = true }
            return !w.flushScheduled
        }
        if schedule { scheduleFlush() }
    }

    func scheduleFlush() {
        eventLoop.execute { self.flushOutbound() }
    }

    /// On the event loop: hands everything buffered to the channel in one write.
    ///
    /// While publishers keep producing, the loop keeps this job re-queued (`flushScheduled`
    /// stays set), so publishers do not pay for waking the event loop on every batch: each
    /// pass writes what accumulated during the previous write. When the socket is full the
    /// job parks until writability returns; when the buffer is empty the flag clears.
    func flushOutbound() {
        let batch: ((any Channel), ByteBuffer, [CheckedContinuation<Void, any Error>])? = writer.withLock { w in
            guard let channel = w.channel, w.out.readableBytes > 0 else {
                w.flushScheduled = false
                return nil
            }
            guard w.writable else { return nil }  // writabilityChanged resumes the job
            let bytes = w.out
            w.out = channel.allocator.buffer(capacity: max(64 * 1024, min(bytes.readableBytes, 1024 * 1024)))
            defer { w.spaceWaiters.removeAll() }
            return (channel, bytes, w.spaceWaiters)
        }
        guard let (channel, bytes, waiters) = batch else { return }
        channel.writeAndFlush(bytes, promise: nil)
        for waiter in waiters { waiter.resume() }
        // More arrived during the write: go again after other events. Nothing: the next
        // publisher schedules a pass (clearing the flag now keeps request latency low).
        let more = writer.withLock { w -> Bool in
            if w.out.readableBytes > 0 { return true }
            w.flushScheduled = false
            return false
        }
        if more { eventLoop.execute { self.flushOutbound() } }
    }

    /// The socket drained (or filled): flush if it can take more.
    func writabilityChanged(on channel: any Channel) {
        let flush = writer.withLock { w -> Bool in
            guard w.channel === channel else { return false }
            w.writable = channel.isWritable
            return w.writable
        }
        if flush { flushOutbound() }
    }

    @usableFromInline
    func waitForOutboundSpace() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome = writer.withLock { w -> Result<Void, NATSError>? in
                switch w.status {
                case .closed: return .failure(.connectionClosed)
                case .disconnected: return .success(())
                case .connected:
                    if w.out.readableBytes <= options.maxPendingOutboundBytes { return .success(()) }
                    w.spaceWaiters.append(continuation)
                    return nil
                }
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// Sends a `PING` and waits for the `PONG`: once it returns, the server has processed
    /// everything this client sent before.
    public func flush(timeout: Duration? = nil) async throws {
        let timeout = TimeAmount(timeout ?? options.flushTimeout)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let registered = writer.withLock { w -> Result<(Int, Bool), NATSError> in
                switch w.status {
                case .closed: return .failure(.connectionClosed)
                case .disconnected: return .failure(.disconnected)
                case .connected:
                    w.nextPongID += 1
                    w.pongWaiters.append(.init(id: w.nextPongID, continuation: continuation))
                    w.out.writePing()
                    defer { w.flushScheduled = true }
                    return .success((w.nextPongID, !w.flushScheduled))
                }
            }
            switch registered {
            case .failure(let error):
                continuation.resume(throwing: error)
            case .success(let (id, schedule)):
                if schedule { scheduleFlush() }
                eventLoop.scheduleTask(in: timeout) { [weak self] in
                    self?.expirePong(id: id, after: timeout)
                }
            }
        }
    }

    private func expirePong(id: Int, after timeout: TimeAmount) {
        let expired: CheckedContinuation<Void, any Error>? = writer.withLock { w in
            guard let index = w.pongWaiters.firstIndex(where: { $0.id == id }) else { return nil }
            defer { w.pongWaiters[index].continuation = nil }
            return w.pongWaiters[index].continuation
        }
        expired?.resume(throwing: NATSError.timeout(operation: "flush", seconds: Double(timeout.nanoseconds) / 1e9))
    }

    /// A `PONG` arrived on an established connection: it answers the oldest outstanding `PING`.
    func completePing(on channel: any Channel) {
        let waiter: CheckedContinuation<Void, any Error>? = writer.withLock { w in
            guard w.channel === channel else { return nil }
            return w.pongWaiters.popFirst()?.continuation
        }
        waiter?.resume()
    }
}
