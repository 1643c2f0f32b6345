/// Connection settings a deploy may carry for triggers or host services.
public struct NATSConnectionSettings: Codable, Sendable, Equatable {
    /// `nats_url`: the NATS server URL to connect to; nil or empty: the node's own workload connection.
    public var natsURL: String?
    /// `nats_user_jwt`: the user JWT to connect with.
    public var natsUserJWT: String?
    /// `nats_user_seed`: the user's nkey seed. Put it only inside the sealed environment, never in
    /// clear (Nex 0.2 sent it in clear).
    public var natsUserSeed: String?

    enum CodingKeys: String, CodingKey { case natsURL = "nats_url", natsUserJWT = "nats_user_jwt", natsUserSeed = "nats_user_seed" }

    /// Connection settings; every field is optional.
    public init(natsURL: String? = nil, natsUserJWT: String? = nil, natsUserSeed: String? = nil) {
        self.natsURL = natsURL; self.natsUserJWT = natsUserJWT; self.natsUserSeed = natsUserSeed
    }
}

/// `$NEX.DEPLOY.<ns>.<node>` request.
public struct DeployRequest: Codable, Sendable, Equatable {
    /// `argv`: the arguments of a native service.
    public var argv: [String]?
    /// `description`: free text, shown in the workload's ``MachineSummary`` (`info`).
    public var description: String?
    /// `type`: `native`, `wasm`, `javascript` (or Nex's `v8`).
    public var type: String
    /// `location`: `nats://BUCKET/KEY` or `file:///path` (see ``ArtifactLocation``).
    public var location: String
    /// `essential`: services only: restart with backoff when it exits.
    public var essential: Bool?
    /// `workload_jwt`: the deploy JWT: `sub` is the workload name, `nats.hash` the artifact's SHA-256.
    public var workloadJWT: String
    /// `environment`: the JSON environment map, sealed with XKeys to the node's public xkey, std base64.
    public var environment: String
    /// `jsdomain`: the JetStream domain of the artifact's object store bucket.
    public var jsDomain: String?
    /// `sender_public_key`: the sender's public xkey (`X...`), to open `environment`.
    public var senderPublicKey: String
    /// `target_node`: the node id the deploy is for.
    public var targetNode: String
    /// `trigger_subjects`: functions only: the subjects whose messages trigger a run.
    public var triggerSubjects: [String]?
    /// `trigger_connection`: the connection the triggers subscribe on.
    public var triggerConnection: NATSConnectionSettings?
    /// `retry_count`: set by the node when it redeploys an essential workload.
    public var retryCount: Int?
    /// `retried_at`: RFC 3339 time of the redeploy.
    public var retriedAt: String?
    /// `host_services`: the connection for host services.
    public var hostServices: NATSConnectionSettings?
    /// `limits`, ours: resource limits for this workload; the node's `workload_limits` fill what is unset.
    public var limits: ResourceLimits?
    /// `network`, ours: the host's network (the default: a service reaches its NATS) or none, a
    /// loopback of its own (sandboxed nodes only).
    public var network: WorkloadNetwork?
    /// `reschedulable`, ours: an essential service that another node of the nexus starts again
    /// when this one is lost; its `environment` is sealed to the nexus's xkey (`nexus_xkey`),
    /// not the node's.
    public var reschedulable: Bool?

    enum CodingKeys: String, CodingKey {
        case argv, description, type, location, essential, workloadJWT = "workload_jwt", environment
        case jsDomain = "jsdomain", senderPublicKey = "sender_public_key", targetNode = "target_node"
        case triggerSubjects = "trigger_subjects", triggerConnection = "trigger_connection"
        case retryCount = "retry_count", retriedAt = "retried_at", hostServices = "host_services"
        case limits, network, reschedulable
    }

    /// A deploy request; ``NexClient/deploy(_:namespace:node:issuer:sender:)`` builds one from a
    /// ``WorkloadSubmission``.
    public init(type: String, location: String, workloadJWT: String, environment: String, senderPublicKey: String,
                targetNode: String, argv: [String]? = nil, description: String? = nil, essential: Bool? = nil,
                jsDomain: String? = nil, triggerSubjects: [String]? = nil) {
        self.type = type; self.location = location; self.workloadJWT = workloadJWT; self.environment = environment
        self.senderPublicKey = senderPublicKey; self.targetNode = targetNode; self.argv = argv
        self.description = description; self.essential = essential; self.jsDomain = jsDomain
        self.triggerSubjects = triggerSubjects
    }
}

/// `$NEX.DEPLOY` reply data.
public struct RunResponse: Codable, Sendable, Equatable {
    /// `started`: true once the agent accepted the workload and its process runs.
    public var started: Bool
    /// `id`: the new workload's id.
    public var id: String
    /// `issuer`: the deploy JWT's `iss`.
    public var issuer: String
    /// `name`: the workload's name (the JWT's `sub`).
    public var name: String

    /// Deploy reply data.
    public init(started: Bool, id: String, issuer: String, name: String) {
        self.started = started; self.id = id; self.issuer = issuer; self.name = name
    }
}

/// `$NEX.STOP.<ns>.<node>` request.
public struct StopRequest: Codable, Sendable, Equatable {
    /// `workload_id`: the workload to stop.
    public var workloadID: String
    /// `workload_jwt`: a stop JWT for the same workload name, signed by the issuer that deployed it.
    public var workloadJWT: String
    /// `target_node`: the node id the request is for.
    public var targetNode: String

    enum CodingKeys: String, CodingKey { case workloadID = "workload_id", workloadJWT = "workload_jwt", targetNode = "target_node" }

    /// A stop request.
    public init(workloadID: String, workloadJWT: String, targetNode: String) {
        self.workloadID = workloadID; self.workloadJWT = workloadJWT; self.targetNode = targetNode
    }
}

/// `$NEX.STOP` reply data.
public struct StopResponse: Codable, Sendable, Equatable {
    /// `stopped`: true once the workload is gone.
    public var stopped: Bool
    /// `id`: the workload's id.
    public var id: String
    /// `issuer`: the stop JWT's `iss`.
    public var issuer: String
    /// `name`: the workload's name.
    public var name: String

    /// Stop reply data.
    public init(stopped: Bool, id: String, issuer: String, name: String) {
        self.stopped = stopped; self.id = id; self.issuer = issuer; self.name = name
    }
}

/// Resource limits a deploy asks for (`limits` in ``DeployRequest``); absent values take the
/// node's defaults.
public struct ResourceLimits: Codable, Sendable, Equatable {
    /// `memory_bytes`: the workload's memory, swap included: its sandbox's cgroup limit (raised
    /// by what its agent uses), or `RLIMIT_AS` where the node has no cgroup for it.
    public var memoryBytes: Int?
    /// `open_files`: the open-files limit (`RLIMIT_NOFILE`).
    public var openFiles: Int?
    /// `processes`: the workload's processes and threads: its sandbox's `pids.max` (raised by
    /// its agent's), or `RLIMIT_NPROC` (which counts every process of the uid) without a cgroup.
    public var processes: Int?
    /// `cpu_millicores`: CPU time, in thousandths of a core (`500`: half a core), as its
    /// sandbox's CFS quota; a node without a cpu cgroup refuses a deploy that sets it.
    public var cpuMillicores: Int?

    enum CodingKeys: String, CodingKey {
        case memoryBytes = "memory_bytes", openFiles = "open_files", processes, cpuMillicores = "cpu_millicores"
    }

    /// Resource limits; nil values take the node's `workload_limits`.
    public init(memoryBytes: Int? = nil, openFiles: Int? = nil, processes: Int? = nil, cpuMillicores: Int? = nil) {
        self.memoryBytes = memoryBytes; self.openFiles = openFiles; self.processes = processes
        self.cpuMillicores = cpuMillicores
    }
}

/// The network a workload's sandbox has (`network` in a ``DeployRequest``).
public enum WorkloadNetwork: String, Codable, Sendable, CaseIterable {
    /// The host's network, as any process of the host.
    case host
    /// A network namespace of its own with only a loopback interface: nothing outside it.
    case none
}
