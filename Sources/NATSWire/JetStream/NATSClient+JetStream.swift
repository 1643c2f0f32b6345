import NIOCore

extension NATSClient {
    /// A ``JetStreamContext`` on this client, optionally in JetStream domain `domain`.
    public func jetStream(domain: String? = nil, timeout: TimeAmount = .seconds(5)) throws -> JetStreamContext {
        try JetStreamContext(client: self, domain: domain, timeout: timeout)
    }
}
