import FoundationEssentials
import Logging
import NATSWire
import NexControl

/// The workloads a node runs, kept in a JetStream key-value bucket of the control plane
/// (`state_bucket`, `state_replicas`), so that the node, restarted with the same identity,
/// brings them back: same workload ids, same (sealed) environment.
///
/// One key per workload, `<node id>.<workload id>`, holding the deploy request as the node
/// received it. Each record is signed with the node's key and checked against it when read:
/// whoever else may write to the bucket cannot make a node start a workload.
struct WorkloadStateStore: Sendable {
    /// A workload as recorded: enough to deploy it again.
    struct Record: Codable, Sendable, Equatable {
        var id: String
        var namespace: String
        var request: DeployRequest
        /// When the node accepted the deploy (Unix seconds): its token is checked as of then.
        var acceptedAt: Int64
        /// The node's Ed25519 signature of the record without it (base64).
        var signature: String?

        enum CodingKeys: String, CodingKey {
            case id, namespace, request, acceptedAt = "accepted_at", signature
        }

        /// The bytes signed: the record without its signature, keys sorted.
        func signedBytes() throws -> [UInt8] {
            var unsigned = self
            unsigned.signature = nil
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return Array(try encoder.encode(unsigned))
        }
    }

    let bucket: KeyValue
    let identity: NodeIdentity

    /// Binds to the bucket, creating it when missing.
    static func open(bucket name: String, replicas: Int, control: NATSClient, identity: NodeIdentity) async throws
        -> WorkloadStateStore
    {
        let js = try control.jetStream()
        let bucket: KeyValue
        do {
            bucket = try await js.keyValue(name)
        } catch KeyValueError.bucketNotFound {
            bucket = try await js.createKeyValue(KeyValueConfig(bucket: name, history: 1, replicas: replicas))
        }
        return WorkloadStateStore(bucket: bucket, identity: identity)
    }

    private func key(_ id: String) -> String { "\(identity.nodeID).\(id)" }

    /// Records a workload the node runs.
    func record(id: String, namespace: String, request: DeployRequest, acceptedAt: Date) async throws {
        var record = Record(id: id, namespace: namespace, request: request,
                            acceptedAt: Int64(acceptedAt.timeIntervalSince1970), signature: nil)
        record.signature = Data(identity.signingKey.sign(try record.signedBytes())).base64EncodedString()
        _ = try await bucket.put(key(id), Array(try JSONEncoder().encode(record)))
    }

    /// Forgets a workload that was stopped or ended.
    func forget(id: String) async throws {
        _ = try await bucket.delete(key(id))
    }

    /// This node's records, oldest first; records that are unreadable, not signed by this
    /// node or filed under another key are left out, each with a warning.
    func records(logger: Logger) async throws -> [Record] {
        let keys = try await bucket.keys(matching: "\(identity.nodeID).*")
        var records: [Record] = []
        for key in keys {
            guard let entry = try? await bucket.get(key),
                  let record = try? JSONDecoder().decode(Record.self, from: Data(entry.value.readableBytesView)),
                  let signature = record.signature.flatMap({ Data(base64Encoded: $0) }),
                  let bytes = try? record.signedBytes(),
                  identity.signingKey.verify(signature: signature, message: bytes),
                  key == self.key(record.id)
            else {
                logger.warning("ignoring a workload record this node did not write", metadata: ["key": "\(key)"])
                continue
            }
            records.append(record)
        }
        return records.sorted { $0.acceptedAt < $1.acceptedAt }
    }
}
