extension JetStreamContext {
    /// Creates an ``OrderedConsumer`` on `stream`: its messages in order, exactly once.
    ///
    /// - Parameters:
    ///   - stream: the name of the stream to consume.
    ///   - filterSubject: only messages on this subject (wildcards allowed).
    ///   - deliverPolicy: where to start; `.all` by default.
    ///   - headersOnly: deliver headers without payloads.
    ///   - idleHeartbeat: how often the server signals an idle consumer; three missed heartbeats
    ///     restart the consumer.
    public func orderedConsumer(
        stream: String, filterSubject: String? = nil, deliverPolicy: DeliverPolicy = .all,
        headersOnly: Bool = false, idleHeartbeat: Duration = .seconds(5)
    ) async throws -> OrderedConsumer {
        try Self.validateName(stream, what: "stream")
        if let filterSubject { try NATSSubject.validateSubscribe(filterSubject) }
        guard idleHeartbeat >= .milliseconds(100) else {
            throw JetStreamError.invalidArgument(stream, "the idle heartbeat must be at least 100 ms")
        }
        let consumer = OrderedConsumer(
            js: self, stream: stream, filterSubject: filterSubject, deliverPolicy: deliverPolicy,
            headersOnly: headersOnly, idleHeartbeat: idleHeartbeat)
        try await consumer.start(deliverPolicy)
        return consumer
    }
}
