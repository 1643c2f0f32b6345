import NIOCore

extension NATSClient {
    /// On the event loop: an operation from the server after the handshake. Returns the
    /// subscription buffer whose consumer must be signalled once the current read is done.
    func received(_ op: ServerOp, on channel: any Channel, from server: ServerAddress) -> SubscriptionBuffer? {
        switch op {
        case .msg(let message):
            return deliver(message)
        case .pong:
            pongReceived(on: channel)
        case .info(let info):
            infoUpdated(info, from: server)
        case .err(let message):
            serverError(message, on: channel)
        case .malformedMessage(let sid, let subject, let error):
            logger.warning("natswire malformed message", metadata: ["sid": "\(sid)", "subject": "\(subject)", "error": "\(error)"])
            emit(.error(.protocolViolation(error)))
        case .ok, .ping:
            break
        }
        return nil
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

    /// An `INFO` after the handshake; it may arrive before the connection is activated, so the
    /// server that sent it is passed along rather than read from the client state.
    private func infoUpdated(_ info: ServerInfo, from origin: ServerAddress) {
        state.withLock { $0.info = info }
        writer.withLock { $0.maxPayload = info.maxPayload }
        if info.lameDuckMode { emit(.lameDuck(server: origin.description)) }
        learnServers(from: info, via: origin)
    }

    /// `-ERR` after the handshake. Permission and subject errors leave the connection up;
    /// stale-connection and capacity errors lead to a reconnect; anything else closes the
    /// client with the server's message.
    private func serverError(_ message: String, on channel: any Channel) {
        let lower = message.lowercased()
        if lower.hasPrefix("permissions violation") {
            emit(.error(.permissionViolation(message)))
        } else if lower.hasPrefix("invalid subject") || lower.hasPrefix("invalid publish subject") {
            emit(.error(.serverError(message)))
        } else if lower.contains("stale connection") || lower.contains("maximum connections exceeded")
            || lower.contains("slow consumer")
        {
            emit(.error(.serverError(message)))
            state.withLock { s in s.disconnectReason = s.disconnectReason ?? .serverError(message) }
        } else {
            let error: NATSError = lower.contains("authorization") || lower.contains("authentication")
                ? .authorizationFailed(server: connectedServer ?? "", message: message)
                : .serverError(message)
            logger.error("natswire fatal server error", metadata: ["error": "\(message)"])
            emit(.error(error))
            shutdown(error: error)
        }
    }
}
