import NIOCore

extension NATSClient {
    /// On the event loop: a malformed `HMSG` (intact frame, headers that do not parse) is
    /// dropped and reported; the connection stays up.
    func receivedMalformed(sid: Int, subject: String, error: NATSProtocolError) {
        logger.warning("natswire malformed message", metadata: ["sid": "\(sid)", "subject": "\(subject)", "error": "\(error)"])
        emit(.error(.protocolViolation(error)))
    }

    private enum Delivery {
        case subscription(SubscriptionBuffer, subject: String, max: Int?)
        case reply(token: String)
        case none
    }

    /// Routes a message to its subscription or to the request waiting for it. The client lock
    /// is only read here; the subscription's own lock counts and queues the message.
    func deliver(_ message: NATSMessage) -> SubscriptionBuffer? {
        let delivery = state.withLock { s -> Delivery in
            if message.sid == s.muxSID {
                let token = message.subject.utf8.dropFirst(requestInbox.utf8.count + 1)
                return .reply(token: String(Substring(token)))
            }
            guard let sub = s.subscriptions[message.sid] else { return .none }
            return .subscription(sub.buffer, subject: sub.subject, max: sub.max)
        }
        switch delivery {
        case .subscription(let buffer, let subject, let max):
            let (result, delivered) = buffer.push(message)
            var wake = false
            switch result {
            case .queued(let wakeConsumer):
                wake = wakeConsumer
            case .dropped(let first, let total) where first:
                logger.warning("natswire slow consumer", metadata: ["subject": "\(subject)", "sid": "\(message.sid)"])
                emit(.slowConsumer(subject: subject, sid: message.sid, dropped: total))
            case .dropped, .finished:
                break
            }
            if let max, delivered >= max {
                state.withLock { s in
                    if s.subscriptions[message.sid]?.buffer === buffer { s.subscriptions[message.sid] = nil }
                }
                buffer.finish()
                return nil
            }
            return wake ? buffer : nil
        case .reply(let token):
            completeRequest(token, with: .success(message))
        case .none:
            break
        }
        return nil
    }

    /// An `INFO` on an established connection (the state machine has learned its servers).
    func infoUpdated(_ info: ServerInfo, from origin: ServerAddress, discovered: [String]) {
        state.withLock { $0.info = info }
        writer.withLock { $0.maxPayload = info.maxPayload }
        if info.lameDuckMode { emit(.lameDuck(server: origin.description)) }
        if !discovered.isEmpty { emit(.serversDiscovered(discovered)) }
    }
}
