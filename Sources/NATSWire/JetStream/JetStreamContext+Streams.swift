extension JetStreamContext {
    private struct SuccessResponse: Decodable {
        var success: Bool?
        var purged: UInt64?
    }

    private struct PurgeRequest: Encodable {
        var filter: String?
        var keep: UInt64?
    }

    /// The JetStream usage and limits of the account (`INFO`).
    public func accountInfo() async throws -> AccountInfo {
        try await apiRequest("INFO")
    }

    /// Creates a stream. Creating an identical stream again succeeds; a stream of the same name
    /// with another configuration fails with err_code ``JetStreamError/streamNameInUse``.
    @discardableResult
    public func createStream(_ config: StreamConfig) async throws -> StreamInfo {
        try Self.validateName(config.name, what: "stream")
        return try await apiRequest("STREAM.CREATE.\(config.name)", body: config)
    }

    /// Changes the configuration of an existing stream.
    @discardableResult
    public func updateStream(_ config: StreamConfig) async throws -> StreamInfo {
        try Self.validateName(config.name, what: "stream")
        return try await apiRequest("STREAM.UPDATE.\(config.name)", body: config)
    }

    /// The configuration and state of a stream; a missing stream throws a ``JetStreamError`` with
    /// err_code ``JetStreamError/streamNotFound``.
    public func streamInfo(_ name: String) async throws -> StreamInfo {
        try Self.validateName(name, what: "stream")
        return try await apiRequest("STREAM.INFO.\(name)")
    }

    /// Deletes a stream and everything in it.
    public func deleteStream(_ name: String) async throws {
        try Self.validateName(name, what: "stream")
        let _: SuccessResponse = try await apiRequest("STREAM.DELETE.\(name)")
    }

    /// Removes the messages of a stream, only those on `subject` when given (wildcards allowed),
    /// keeping the newest `keep` when given. Returns how many were removed.
    @discardableResult
    public func purgeStream(_ name: String, subject: String? = nil, keep: UInt64? = nil) async throws -> UInt64 {
        try Self.validateName(name, what: "stream")
        if let subject { try NATSSubject.validateSubscribe(subject) }
        let body = subject == nil && keep == nil ? nil : PurgeRequest(filter: subject, keep: keep)
        let response: SuccessResponse = try await apiRequest("STREAM.PURGE.\(name)", body: body)
        return response.purged ?? 0
    }

    /// Deletes a consumer of a stream.
    public func deleteConsumer(stream: String, consumer: String) async throws {
        try Self.validateName(stream, what: "stream")
        try Self.validateName(consumer, what: "consumer")
        let _: SuccessResponse = try await apiRequest("CONSUMER.DELETE.\(stream).\(consumer)")
    }
}
