import NexAgentBus
import NexWorkloads
import NATSWire

extension HostServicesServer {
    /// The workload's object store bucket name.
    func objectStoreBucket(for scope: HostServiceScope) -> String {
        HostServiceBucketName.render(
            configuration.objectStore.bucketTemplate, namespace: scope.namespace, workloadName: scope.workloadName)
    }

    /// `objectstore`: `get`, `put`, `delete` (header `x-object-name`) and `list`, on the workload's bucket.
    func serveObjectStore(_ method: String, scope: HostServiceScope, headers: NATSHeaders, body: [UInt8]) async throws
        -> HostServiceReply
    {
        guard ["get", "put", "delete", "list"].contains(method) else { throw Self.unknownMethod(method, of: "objectstore") }
        let name = method == "list" ? "" : try Self.header("x-object-name", in: headers)
        let bucket = objectStoreBucket(for: scope)
        let settings = configuration.objectStore
        let operation = method == "list"
            ? "objectstore list of bucket \(bucket)" : "objectstore \(method) of '\(name)' in bucket \(bucket)"
        do {
            let store = try await buckets.objectStore(
                bucket, on: scope.connection, maxBytes: settings.maxBytes, create: settings.jitProvision)
            switch method {
            case "get":
                // Refuse before reading what the bus could not carry back anyway.
                let size = try await store.info(name).size
                let limit = bus.maxPayload
                guard size <= UInt64(limit) else {
                    throw HostServiceFailure(413, "object '\(name)' is \(size) bytes, more than the agent bus carries (\(limit))")
                }
                return Self.ok(try await store.get(name).data)
            case "put":
                return Self.ok(Self.json(try await store.put(name, data: body)))
            case "delete":
                try await store.delete(name)
                return Self.ok(Self.success)
            default:
                return Self.ok(Self.json(try await store.list()))
            }
        } catch ObjectStoreError.objectNotFound(_, let name) {
            throw HostServiceFailure.notFound("no such object: \(name)")
        } catch let error as ObjectStoreError {
            if case .invalidObjectName = error { throw HostServiceFailure.badRequest("\(error)") }
            throw Self.storageFailure(error, operation)
        } catch {
            throw Self.storageFailure(error, operation)
        }
    }
}
