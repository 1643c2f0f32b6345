extension JetStreamContext {
    /// Creates a key-value bucket, or binds to it when an identical one exists.
    ///
    /// Throws ``KeyValueError`` for a bad name or configuration (nothing is sent), and a
    /// ``JetStreamError`` with err_code ``JetStreamError/streamNameInUse`` when the bucket exists
    /// with another configuration.
    public func createKeyValue(_ config: KeyValueConfig) async throws -> KeyValue {
        let stream = try config.streamConfig()
        let info = try await createStream(stream)
        return KeyValue(js: self, bucket: config.bucket, allowsDirect: info.config.allowDirect)
    }

    /// Binds to an existing key-value bucket. Throws ``KeyValueError/bucketNotFound(_:)`` when
    /// there is none, ``KeyValueError/notAKeyValueBucket(_:)`` when `KV_<bucket>` is another kind of stream.
    public func keyValue(_ bucket: String) async throws -> KeyValue {
        try KeyValue.validateBucket(bucket)
        let info: StreamInfo
        do {
            info = try await streamInfo(KeyValue.streamName(bucket))
        } catch let error as JetStreamError where error.errCode == JetStreamError.streamNotFound {
            throw KeyValueError.bucketNotFound(bucket)
        }
        guard info.config.maxMessagesPerSubject >= 1 else { throw KeyValueError.notAKeyValueBucket(bucket) }
        return KeyValue(js: self, bucket: bucket, allowsDirect: info.config.allowDirect)
    }

    /// Deletes a key-value bucket and all its keys. Throws ``KeyValueError/bucketNotFound(_:)`` when there is none.
    public func deleteKeyValue(_ bucket: String) async throws {
        try KeyValue.validateBucket(bucket)
        do {
            try await deleteStream(KeyValue.streamName(bucket))
        } catch let error as JetStreamError where error.errCode == JetStreamError.streamNotFound {
            throw KeyValueError.bucketNotFound(bucket)
        }
    }
}
