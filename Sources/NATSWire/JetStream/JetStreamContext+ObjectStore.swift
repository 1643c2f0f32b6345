extension JetStreamContext {
    /// Creates an object store bucket, or binds to it when an identical one exists.
    ///
    /// Throws ``ObjectStoreError`` for a bad name or configuration (nothing is sent), and a
    /// ``JetStreamError`` with err_code ``JetStreamError/streamNameInUse`` when the bucket exists
    /// with another configuration.
    public func createObjectStore(_ config: ObjectStoreConfig) async throws -> ObjectStore {
        let stream = try config.streamConfig()
        let info = try await createStream(stream)
        return ObjectStore(js: self, bucket: config.bucket, allowsDirect: info.config.allowDirect)
    }

    /// Binds to an existing object store bucket. Throws ``ObjectStoreError/bucketNotFound(_:)`` when there is none.
    public func objectStore(_ bucket: String) async throws -> ObjectStore {
        try ObjectStore.validateBucket(bucket)
        do {
            let info = try await streamInfo(ObjectStore.streamName(bucket))
            return ObjectStore(js: self, bucket: bucket, allowsDirect: info.config.allowDirect)
        } catch let error as JetStreamError where error.errCode == JetStreamError.streamNotFound {
            throw ObjectStoreError.bucketNotFound(bucket)
        }
    }

    /// Deletes an object store bucket and all its objects. Throws ``ObjectStoreError/bucketNotFound(_:)`` when there is none.
    public func deleteObjectStore(_ bucket: String) async throws {
        try ObjectStore.validateBucket(bucket)
        do {
            try await deleteStream(ObjectStore.streamName(bucket))
        } catch let error as JetStreamError where error.errCode == JetStreamError.streamNotFound {
            throw ObjectStoreError.bucketNotFound(bucket)
        }
    }
}
