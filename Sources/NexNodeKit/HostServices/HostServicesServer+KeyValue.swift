import NexAgentBus
import NexWorkloads
import NATSWire
import NIOCore

extension HostServicesServer {
    /// The workload's key-value bucket name.
    func keyValueBucket(for scope: HostServiceScope) -> String {
        HostServiceBucketName.render(
            configuration.keyValue.bucketTemplate, namespace: scope.namespace, workloadName: scope.workloadName)
    }

    /// `kv`: `get`, `set`, `delete` (header `x-keyvalue-key`) and `keys`, on the workload's bucket.
    func serveKeyValue(_ method: String, scope: HostServiceScope, headers: NATSHeaders, body: [UInt8]) async throws
        -> HostServiceReply
    {
        guard ["get", "set", "delete", "keys"].contains(method) else { throw Self.unknownMethod(method, of: "kv") }
        let key = method == "keys" ? "" : try Self.header("x-keyvalue-key", in: headers)
        let bucket = keyValueBucket(for: scope)
        let settings = configuration.keyValue
        let operation = method == "keys" ? "kv keys of bucket \(bucket)" : "kv \(method) of '\(key)' in bucket \(bucket)"
        do {
            let kv = try await buckets.keyValue(
                bucket, on: scope.connection, maxBytes: settings.maxBytes, create: settings.jitProvision)
            switch method {
            case "get":
                let entry = try await kv.get(key)
                return Self.ok(Array(entry.value.readableBytesView))
            case "set":
                let revision = try await kv.put(key, body)
                return Self.ok(Self.json(SetResult(revision: revision, success: true)))
            case "delete":
                try await kv.delete(key)
                return Self.ok(Self.success)
            default:
                return Self.ok(Self.json(try await kv.keys()))
            }
        } catch KeyValueError.keyNotFound(_, let key) {
            throw HostServiceFailure.notFound("no such key: \(key)")
        } catch let error as KeyValueError {
            if case .invalidKey = error { throw HostServiceFailure.badRequest("\(error)") }
            throw Self.storageFailure(error, operation)
        } catch {
            throw Self.storageFailure(error, operation)
        }
    }

    private struct SetResult: Encodable {
        var revision: UInt64
        var success: Bool
    }
}
