import NexAgentBus
import NexWorkloads
import NATSWire

/// The key-value and object store handles of host services, bound (or created) once per
/// connection and bucket. Concurrent first uses share one lookup; a failed one is retried
/// by the next request.
///
/// An entry keeps its connection alive; ``forget(_:)`` drops a connection's entries when its
/// workload goes away.
actor HostServiceBuckets {
    private struct Key: Hashable {
        let connection: ObjectIdentifier
        let bucket: String
    }

    // Each lookup is a task so that concurrent first uses share it: every caller awaits it, so
    // it ends before the calls that wait for it (and the host-services server waits for those).
    private var keyValues: [Key: Task<KeyValue, any Error>] = [:]
    private var objectStores: [Key: Task<ObjectStore, any Error>] = [:]

    /// The key-value bucket `bucket` on `connection`; created with `maxBytes` when missing and `create`.
    func keyValue(_ bucket: String, on connection: NATSClient, maxBytes: Int64, create: Bool) async throws -> KeyValue {
        let key = Key(connection: ObjectIdentifier(connection), bucket: bucket)
        let task = keyValues[key] ?? Task {
            let js = try connection.jetStream()
            do {
                return try await js.keyValue(bucket)
            } catch KeyValueError.bucketNotFound(_) where create {
                do {
                    return try await js.createKeyValue(KeyValueConfig(bucket: bucket, maxBytes: maxBytes))
                } catch let error as JetStreamError where error.errCode == JetStreamError.streamNameInUse {
                    return try await js.keyValue(bucket)  // made meanwhile by someone else
                }
            } catch KeyValueError.bucketNotFound(_) {
                throw HostServiceFailure.notFound("key-value bucket \(bucket) does not exist (jit_provision is off)")
            }
        }
        keyValues[key] = task
        do {
            return try await task.value
        } catch {
            if keyValues[key] == task { keyValues[key] = nil }
            throw error
        }
    }

    /// The object store bucket `bucket` on `connection`; created with `maxBytes` when missing and `create`.
    func objectStore(_ bucket: String, on connection: NATSClient, maxBytes: Int64, create: Bool) async throws -> ObjectStore {
        let key = Key(connection: ObjectIdentifier(connection), bucket: bucket)
        let task = objectStores[key] ?? Task {
            let js = try connection.jetStream()
            do {
                return try await js.objectStore(bucket)
            } catch ObjectStoreError.bucketNotFound(_) where create {
                do {
                    return try await js.createObjectStore(ObjectStoreConfig(bucket: bucket, maxBytes: maxBytes))
                } catch let error as JetStreamError where error.errCode == JetStreamError.streamNameInUse {
                    return try await js.objectStore(bucket)
                }
            } catch ObjectStoreError.bucketNotFound(_) {
                throw HostServiceFailure.notFound("object store bucket \(bucket) does not exist (jit_provision is off)")
            }
        }
        objectStores[key] = task
        do {
            return try await task.value
        } catch {
            if objectStores[key] == task { objectStores[key] = nil }
            throw error
        }
    }

    /// Drops every handle bound on `connection`.
    func forget(_ connection: NATSClient) {
        let id = ObjectIdentifier(connection)
        keyValues = keyValues.filter { $0.key.connection != id }
        objectStores = objectStores.filter { $0.key.connection != id }
    }

    /// Drops every handle.
    func removeAll() {
        keyValues = [:]
        objectStores = [:]
    }

    var count: Int { keyValues.count + objectStores.count }
}
