import FoundationEssentials
import NATSWire
import NIOCore

/// A workload found by a workload ping: the node it runs on, and what the node says about it.
public struct RunningWorkload: Sendable, Equatable, Codable {
    /// `node_id`: the node the workload runs on.
    public var nodeID: String
    /// `id`: the workload id.
    public var id: String
    /// `namespace`: the workload's namespace.
    public var namespace: String
    /// `name`: the workload's name.
    public var name: String
    /// `type`: the workload type (`native`, `wasm`, `javascript`).
    public var type: String
    /// `state`: `starting`, `running`, `restarting` or `stopping`; nil when the node does not say.
    public var state: String?
    /// `uptime`: how long it has run, as `1d2h3m4s`; nil when the node does not say.
    public var uptime: String?
    /// `restarts`: how often an essential service was restarted; nil when the node does not say.
    public var restarts: Int?
    /// `cpu_seconds`: CPU time used so far; nil when the node does not say.
    public var cpuSeconds: Double?
    /// `memory_bytes`: memory used now; nil when the node does not say.
    public var memoryBytes: Int?

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id", id, namespace, name, type, state, uptime, restarts
        case cpuSeconds = "cpu_seconds", memoryBytes = "memory_bytes"
    }

    /// A workload on `nodeID`.
    public init(nodeID: String, id: String, namespace: String, name: String, type: String, state: String? = nil,
                uptime: String? = nil, restarts: Int? = nil, cpuSeconds: Double? = nil, memoryBytes: Int? = nil) {
        self.nodeID = nodeID; self.id = id; self.namespace = namespace; self.name = name; self.type = type
        self.state = state; self.uptime = uptime; self.restarts = restarts
        self.cpuSeconds = cpuSeconds; self.memoryBytes = memoryBytes
    }
}

extension NexClient {
    /// The workloads of `namespace` (those whose id or name is `idOrName`, when given; only
    /// those on `node`, when given), from the nodes that answer a workload ping within `window`;
    /// sorted by node, then name, then id.
    public func runningWorkloads(
        namespace: String, matching idOrName: String? = nil, node: String? = nil, window: Duration = .seconds(1)
    ) async throws -> [RunningWorkload] {
        let replies = try await workloadPing(namespace: namespace, workload: idOrName, window: window)
        var found: [RunningWorkload] = []
        for reply in replies where node == nil || reply.nodeID == node {
            for machine in reply.runningMachines where idOrName == nil || machine.id == idOrName || machine.name == idOrName {
                found.append(RunningWorkload(nodeID: reply.nodeID, id: machine.id, namespace: machine.namespace,
                                             name: machine.name, type: machine.type, state: machine.state,
                                             uptime: machine.uptime, restarts: machine.restarts,
                                             cpuSeconds: machine.cpuSeconds, memoryBytes: machine.memoryBytes))
            }
        }
        return found.sorted { ($0.nodeID, $0.name, $0.id) < ($1.nodeID, $1.name, $1.id) }
    }

    /// Deploys `submission` to `node`: asks the node for its public xkey (`$NEX.INFO`), signs
    /// the deploy JWT with `issuer`, seals the environment from `sender` (to the nexus's xkey
    /// for a reschedulable workload), and sends the deploy.
    ///
    /// - Throws: ``NexControlError/nodeRefused(subject:message:)`` with the node's reason, or
    ///   ``WorkloadSubmissionError/notStarted(node:name:)`` when it answers `started: false`.
    public func deploy(
        _ submission: WorkloadSubmission, namespace: String, node: String, issuer: NKeyPair, sender: XKeyPair
    ) async throws -> RunResponse {
        let info = try await info(namespace: namespace, node: node)
        var recipient = info.publicXKey
        if submission.reschedulable == true {
            guard let nexusXKey = info.nexusXKey else {
                throw WorkloadSubmissionError.fieldNotAllowed(
                    field: "reschedulable", type: submission.type,
                    reason: "node \(node) has no nexus xkey (nexus_xkey_seed_file), so no other node could open the environment")
            }
            recipient = nexusXKey
        }
        let request = try submission.deployRequest(issuer: issuer, sender: sender, targetNode: node,
                                                   targetXKey: recipient)
        let response = try await deploy(namespace: namespace, node: node, request: request)
        guard response.started else { throw WorkloadSubmissionError.notStarted(node: node, name: submission.name) }
        return response
    }

    /// Stops workload `id` (named `name`) on `node` with a fresh stop JWT signed by `issuer`,
    /// which must be the issuer of its deploy JWT.
    public func stopWorkload(
        namespace: String, node: String, id: String, name: String, issuer: NKeyPair
    ) async throws -> StopResponse {
        let claims = try WorkloadClaims.stop(name: name, issuer: issuer)
        return try await stop(namespace: namespace, node: node,
                              request: StopRequest(workloadID: id, workloadJWT: claims.token, targetNode: node))
    }

    /// The SHA-256 (hex) of the artifact at `location`: the local file's for `file://` (read
    /// here, so the file must be visible to this process too), the object's recorded digest for
    /// `nats://` (or, when it has none, the hash of its downloaded content).
    public func artifactHash(of location: ArtifactLocation, jsDomain: String? = nil) async throws -> String {
        switch location {
        case let .file(path):
            return try ArtifactDigest.sha256Hex(ofFile: path)
        case let .objectStore(bucket, key):
            let store = try await connection.jetStream(domain: jsDomain, timeout: timeout).objectStore(bucket)
            let info = try await store.info(key)
            if let digest = info.digest, let hex = ArtifactDigest.hex(fromObjectDigest: digest) { return hex }
            let (_, data) = try await store.get(key)
            return ArtifactDigest.sha256Hex(data)
        }
    }
}
