import NIOCore

extension NATSClient {
    /// A ``JetStreamContext`` on this client, optionally in JetStream domain `domain`.
    public func jetStream(domain: String? = nil, timeout: Duration = .seconds(5)) throws -> JetStreamContext {
        try JetStreamContext(client: self, domain: domain, timeout: timeout)
    }
}
