import NIOCore

extension NATSClient {
    /// Sends a request and waits for the first reply.
    ///
    /// Replies come through one wildcard inbox subscription per client (`<inbox>.*`), shared
    /// by all requests. Throws ``NATSError/noResponders(subject:)`` when nobody listens on
    /// `subject`, ``NATSError/timeout(operation:seconds:)`` when no reply comes in time.
    public func request(
        _ payload: ByteBuffer, to subject: String, headers: NATSHeaders? = nil, timeout: Duration? = nil
    ) async throws -> NATSMessage {
        try NATSSubject.validatePublish(subject)
        let timeout = TimeAmount(timeout ?? options.requestTimeout)
        try ensureRequestInbox()
        let token = state.withLock { s in
            s.nextRequestID += 1
            return String(s.nextRequestID, radix: 36)
        }
        let replyTo = "\(requestInbox).\(token)"
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<NATSMessage, any Error>) in
                // Register first, then arm the timer and check cancellation: a timer or a
                // cancellation that fires early must always find the request to complete.
                let accepted = state.withLock { s -> Bool in
                    guard s.lifecycle != .closed else { return false }
                    s.requests[token] = .init(subject: subject, continuation: continuation, timer: nil)
                    return true
                }
                guard accepted else {
                    continuation.resume(throwing: NATSError.connectionClosed)
                    return
                }
                if Task.isCancelled {
                    completeRequest(token, with: .failure(CancellationError()))
                    return
                }
                let seconds = Double(timeout.nanoseconds) / 1e9
                let timer = eventLoop.scheduleTask(in: timeout) { [weak self] () -> Void in
                    self?.completeRequest(token, with: .failure(NATSError.timeout(operation: "request to '\(subject)'", seconds: seconds)))
                }
                let pending = state.withLock { s -> Bool in
                    guard s.requests[token] != nil else { return false }
                    s.requests[token]?.timer = timer
                    return true
                }
                guard pending else {
                    timer.cancel()
                    return
                }
                do {
                    _ = try payload.withUnsafeReadableBytes { bytes throws(NATSError) in
                        try enqueuePublish(subject: subject, replyTo: replyTo, headers: headers, payload: bytes)
                    }
                } catch {
                    completeRequest(token, with: .failure(error))
                }
            }
        } onCancel: {
            completeRequest(token, with: .failure(CancellationError()))
        }
    }

    /// Sends a request with a byte-array payload. See ``request(_:to:headers:timeout:)-(ByteBuffer,_,_,_)``.
    public func request(
        _ payload: [UInt8], to subject: String, headers: NATSHeaders? = nil, timeout: Duration? = nil
    ) async throws -> NATSMessage {
        try await request(ByteBuffer(bytes: payload), to: subject, headers: headers, timeout: timeout)
    }

    /// Sends a request with a text payload (UTF-8). See ``request(_:to:headers:timeout:)-(ByteBuffer,_,_,_)``.
    public func request(
        _ payload: String, to subject: String, headers: NATSHeaders? = nil, timeout: Duration? = nil
    ) async throws -> NATSMessage {
        try await request(ByteBuffer(string: payload), to: subject, headers: headers, timeout: timeout)
    }

    /// Subscribes the shared reply inbox the first time a request is made.
    private func ensureRequestInbox() throws(NATSError) {
        if state.withLock({ $0.muxSID != nil }) { return }
        _ = try register { s throws(NATSError) -> Int? in
            guard s.lifecycle != .closed else { throw NATSError.connectionClosed }
            guard s.muxSID == nil else { return nil }
            let sid = s.nextSID
            s.nextSID += 1
            s.muxSID = sid
            return sid
        } write: { sid, out in
            if let sid { out.writeSubscribe(subject: requestInbox + ".*", queue: nil, sid: sid) }
        }
    }

    /// Resumes a pending request once: with its reply, a timeout, or a failure.
    func completeRequest(_ token: String, with result: Result<NATSMessage, any Error>) {
        guard let request = state.withLock({ $0.requests.removeValue(forKey: token) }) else { return }
        request.timer?.cancel()
        switch result {
        case .success(let message) where message.status == 503 && message.payload.readableBytes == 0:
            request.continuation.resume(throwing: NATSError.noResponders(subject: request.subject))
        default:
            request.continuation.resume(with: result)
        }
    }
}
