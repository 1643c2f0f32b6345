import NIOCore

extension JetStreamContext {
    /// Publishes a message to a subject a stream listens on and waits for the stream's acknowledgement.
    ///
    /// Throws ``JetStreamError`` with ``JetStreamError/Kind/notAvailable`` when no stream listens on
    /// `subject`, or with the server's `code`/`err_code` when the stream refuses the message (an
    /// expectation of `options` failed, the stream is full...).
    @discardableResult
    public func publish(
        _ payload: ByteBuffer, to subject: String, headers: NATSHeaders? = nil,
        options: JetStreamPublishOptions = JetStreamPublishOptions()
    ) async throws -> PubAck {
        var headers = headers
        if options != JetStreamPublishOptions() {
            var merged = headers ?? NATSHeaders()
            options.apply(to: &merged)
            headers = merged
        }
        let reply: NATSMessage
        do {
            reply = try await client.request(payload, to: subject, headers: headers, timeout: timeout)
        } catch NATSError.Code.noResponders {
            throw JetStreamError.notAvailable(subject, "no stream listens on this subject")
        }
        return try JetStreamJSON.decodeReply(PubAck.self, from: reply, subject: subject)
    }

    /// Publishes bytes. See ``publish(_:to:headers:options:)-(ByteBuffer,_,_,_)``.
    @discardableResult
    public func publish(
        _ payload: [UInt8], to subject: String, headers: NATSHeaders? = nil,
        options: JetStreamPublishOptions = JetStreamPublishOptions()
    ) async throws -> PubAck {
        try await publish(ByteBuffer(bytes: payload), to: subject, headers: headers, options: options)
    }

    /// Publishes UTF-8 text. See ``publish(_:to:headers:options:)-(ByteBuffer,_,_,_)``.
    @discardableResult
    public func publish(
        _ payload: String, to subject: String, headers: NATSHeaders? = nil,
        options: JetStreamPublishOptions = JetStreamPublishOptions()
    ) async throws -> PubAck {
        try await publish(ByteBuffer(string: payload), to: subject, headers: headers, options: options)
    }
}
