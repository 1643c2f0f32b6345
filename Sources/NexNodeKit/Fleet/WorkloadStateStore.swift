import FoundationEssentials
import Logging
import NATSWire
import NexControl

/// The workloads a node runs, kept in a JetStream key-value bucket of the control plane
/// (`state_bucket`, `state_replicas`), so that the node, restarted with the same identity,
/// brings them back (same workload ids, same sealed environment), and so that another node of
/// its nexus can take over its reschedulable services when it is lost.
///
/// One key per workload, `<node id>.<workload id>`, holding the deploy request as the node
/// received it. Each record is signed with a node's key: by the node the key names, or, while
/// another node adopts it, by that node (`adopted_by`). Records whose signature does not hold
/// are ignored: whoever else may write to the bucket cannot make a node start a workload.
/// Reschedulable records, and adoption marks, are also sealed with the nexus's signing key
/// (derived from the nexus seed only its nodes hold): a node acts on another node's record, or
/// gives up a workload to another node, only when that seal holds, so a key made up by a
/// bucket writer moves nothing.
///
/// Every change of hands is a compare-and-set on the record's revision (``claim(_:)``,
/// ``adopt(_:)``), confirmed: of two nodes that want the same record, exactly one gets it.
/// The confirmation is needed because nats-server before 2.9.21 checks a clustered stream's
/// expected last sequence before the write's consensus, not in it (nats-server#4320), so two
/// compare-and-sets sent at once can both succeed; the later write then stands. A node that
/// won waits for writes in flight to land (``settle``) and reads the record back from the
/// stream's leader: only the node whose write is the record's last revision has it.
struct WorkloadStateStore: Sendable {
    /// A workload as recorded: enough to deploy it again.
    struct Record: Codable, Sendable, Equatable {
        var id: String
        var namespace: String
        var request: DeployRequest
        /// When the node accepted the deploy (Unix seconds): its token is checked as of then.
        var acceptedAt: Int64
        /// The nexus of the node that recorded it (reschedulable records move only within it).
        var nexus: String?
        /// The node taking the workload over from the node the key names, while it does.
        var adoptedBy: String?
        /// The signer's Ed25519 signature of the record without its signatures (base64).
        var signature: String?
        /// The nexus signing key's signature of the same bytes (reschedulable records and
        /// adoption marks).
        var nexusSignature: String?

        enum CodingKeys: String, CodingKey {
            case id, namespace, request, acceptedAt = "accepted_at", nexus, adoptedBy = "adopted_by", signature
            case nexusSignature = "nexus_signature"
        }

        var isReschedulable: Bool { request.reschedulable == true }

        /// The bytes signed: the record without its signatures, keys sorted.
        func signedBytes() throws -> [UInt8] {
            var unsigned = self
            unsigned.signature = nil
            unsigned.nexusSignature = nil
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return Array(try encoder.encode(unsigned))
        }

        /// Signed by `key` (a node's), and sealed by `nexus` when given.
        func signed(by key: NKeyPair, nexus: NKeyPair? = nil) throws -> Record {
            var copy = self
            let bytes = try copy.signedBytes()
            copy.signature = Data(key.sign(bytes)).base64EncodedString()
            copy.nexusSignature = nexus.map { Data($0.sign(bytes)).base64EncodedString() }
            return copy
        }
    }

    /// A record as read from the bucket, its signature checked.
    struct Stored: Sendable, Equatable {
        /// The node the key names: the one that runs (or ran) the workload.
        var owner: String
        var revision: UInt64
        var record: Record
    }

    let bucket: KeyValue
    let identity: NodeIdentity
    let nexus: String?
    /// The nexus's signing key (derived from its seed), when this node has it.
    let nexusKey: NKeyPair?
    /// How long a winning compare-and-set waits for competing writes in flight to land before
    /// reading the record back (they were sent within the cluster's round trip of it).
    var settle: Duration = .seconds(1)

    /// Binds to the bucket, creating it when missing.
    static func open(bucket name: String, replicas: Int, control: NATSClient, identity: NodeIdentity, nexus: String?,
                     nexusKey: NKeyPair? = nil) async throws -> WorkloadStateStore
    {
        let js = try control.jetStream()
        let bucket: KeyValue
        do {
            bucket = try await js.keyValue(name)
        } catch KeyValueError.bucketNotFound {
            bucket = try await js.createKeyValue(KeyValueConfig(bucket: name, history: 1, replicas: replicas))
        }
        return WorkloadStateStore(bucket: bucket, identity: identity, nexus: nexus, nexusKey: nexusKey)
    }

    static func key(owner: String, id: String) -> String { "\(owner).\(id)" }

    /// The nexus's signing key derived from its seed: the same on every node of the nexus.
    static func nexusSigningKey(_ seed: XKeyPair) throws -> NKeyPair {
        try seed.derivedSigningKey(label: "nex nexus state v1")
    }

    /// Signed by this node, and sealed for the nexus when reschedulable (or an adoption mark).
    private func sign(_ record: Record) throws -> Record {
        try record.signed(by: identity.signingKey,
                          nexus: record.isReschedulable || record.adoptedBy != nil ? nexusKey : nil)
    }

    /// Whether the record carries this nexus's seal (false without the nexus key).
    func isSealedForNexus(_ record: Record) -> Bool {
        guard let nexusKey, let seal = record.nexusSignature.flatMap({ Data(base64Encoded: $0) }),
              let bytes = try? record.signedBytes()
        else { return false }
        return nexusKey.verify(signature: seal, message: bytes)
    }

    /// Records a workload the node runs.
    func record(id: String, namespace: String, request: DeployRequest, acceptedAt: Date) async throws {
        let record = try sign(Record(id: id, namespace: namespace, request: request,
                                     acceptedAt: Int64(acceptedAt.timeIntervalSince1970), nexus: nexus))
        _ = try await bucket.put(Self.key(owner: identity.nodeID, id: id), Array(try JSONEncoder().encode(record)))
    }

    /// Forgets a workload that was stopped or ended.
    func forget(id: String) async throws {
        _ = try await bucket.delete(Self.key(owner: identity.nodeID, id: id))
    }

    /// The record in `entry` if its signature holds: made by the node its key names, or by the
    /// node adopting it; nil (and a warning) otherwise.
    static func verified(_ entry: KeyValueEntry, logger: Logger) -> Stored? {
        guard entry.operation == .put else { return nil }
        let parts = entry.key.split(separator: ".", maxSplits: 1)
        guard parts.count == 2,
              let record = try? JSONDecoder().decode(Record.self, from: Data(entry.value.readableBytesView)),
              entry.key == key(owner: String(parts[0]), id: record.id),
              let signature = record.signature.flatMap({ Data(base64Encoded: $0) }),
              let bytes = try? record.signedBytes(),
              (try? NKeyPair.verify(publicKey: record.adoptedBy ?? String(parts[0]), signature: signature, message: bytes)) == true
        else {
            logger.warning("ignoring a workload record no node of ours signed", metadata: ["key": "\(entry.key)"])
            return nil
        }
        return Stored(owner: String(parts[0]), revision: entry.revision, record: record)
    }

    /// This node's records not being adopted by another node, oldest first.
    func records(logger: Logger) async throws -> [Stored] {
        var found: [Stored] = []
        for key in try await bucket.keys(matching: "\(identity.nodeID).*") {
            guard let entry = try? await bucket.get(key), let stored = Self.verified(entry, logger: logger),
                  stored.owner == identity.nodeID
            else { continue }
            if let adopter = stored.record.adoptedBy {
                logger.info("a workload of this node was taken over by another node", metadata: [
                    "id": "\(stored.record.id)", "by": "\(adopter)"])
                continue
            }
            found.append(stored)
        }
        return found.sorted { $0.record.acceptedAt < $1.record.acceptedAt }
    }

    /// Takes one of this node's own records back (at a restart): false when it changed since
    /// it was read (another node adopted it meanwhile).
    func claim(_ stored: Stored) async throws -> Bool {
        let record = try sign(stored.record)
        let key = Self.key(owner: stored.owner, id: record.id)
        guard let revision = try await compareAndSet(key, record, revision: stored.revision) else { return false }
        return try await confirm(key, revision: revision)
    }

    /// Marks another node's record as being taken over by this node, if it is still at the
    /// revision read: of nodes racing for it, exactly one gets the new revision, the others nil.
    func adopt(_ stored: Stored) async throws -> Stored? {
        var record = stored.record
        record.adoptedBy = identity.nodeID
        record = try sign(record)
        let key = Self.key(owner: stored.owner, id: record.id)
        guard let revision = try await compareAndSet(key, record, revision: stored.revision),
              try await confirm(key, revision: revision)
        else { return nil }
        return Stored(owner: stored.owner, revision: revision, record: record)
    }

    /// Whether this node's write at `revision` is still the record's last revision once writes
    /// in flight have landed, as the stream's leader has it.
    private func confirm(_ key: String, revision: UInt64) async throws -> Bool {
        try await Task.sleep(for: settle)
        do {
            return try await bucket.getFromLeader(key).revision == revision
        } catch KeyValueError.keyNotFound {
            return false
        }
    }

    /// After an adoption: the record under its old owner's key goes (the workload is recorded
    /// under this node's key by its deploy).
    func finishAdoption(_ adopted: Stored) async throws {
        _ = try await bucket.delete(Self.key(owner: adopted.owner, id: adopted.record.id), lastRevision: adopted.revision)
    }

    /// An adoption that failed: the record goes back as its owner signed it, for another node.
    func abandonAdoption(_ adopted: Stored, original: Record) async throws {
        _ = try await compareAndSet(Self.key(owner: adopted.owner, id: original.id), original, revision: adopted.revision)
    }

    /// Writes `record` if the key is at `revision`: its new revision, or nil when it was not.
    private func compareAndSet(_ key: String, _ record: Record, revision: UInt64) async throws -> UInt64? {
        do {
            return try await bucket.update(key, Array(try JSONEncoder().encode(record)), revision: revision)
        } catch KeyValueError.wrongLastRevision {
            return nil
        }
    }
}
