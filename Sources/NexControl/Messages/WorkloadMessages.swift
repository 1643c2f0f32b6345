/// Connection settings a deploy may carry for triggers or host services.
public struct NATSConnectionSettings: Codable, Sendable, Equatable {
    public var natsURL: String?
    public var natsUserJWT: String?
    /// Only ever inside the sealed environment, never in clear (a Nex 0.2 fix).
    public var natsUserSeed: String?

    enum CodingKeys: String, CodingKey { case natsURL = "nats_url", natsUserJWT = "nats_user_jwt", natsUserSeed = "nats_user_seed" }

    public init(natsURL: String? = nil, natsUserJWT: String? = nil, natsUserSeed: String? = nil) {
        self.natsURL = natsURL; self.natsUserJWT = natsUserJWT; self.natsUserSeed = natsUserSeed
    }
}

/// `$NEX.DEPLOY.<ns>.<node>` request.
public struct DeployRequest: Codable, Sendable, Equatable {
    public var argv: [String]?
    public var description: String?
    /// `native`, `wasm`, `javascript` (or Nex's `v8`).
    public var type: String
    /// `nats://BUCKET/KEY` or `file:///path`.
    public var location: String
    public var essential: Bool?
    /// The workload JWT: `sub` is the workload name, `nats.hash` the artifact's SHA-256.
    public var workloadJWT: String
    /// The JSON environment map, sealed with XKeys to the node's public xkey, std base64.
    public var environment: String
    public var jsDomain: String?
    /// The sender's public xkey (`X...`), to open `environment`.
    public var senderPublicKey: String
    public var targetNode: String
    public var triggerSubjects: [String]?
    public var triggerConnection: NATSConnectionSettings?
    public var retryCount: Int?
    public var retriedAt: String?
    public var hostServices: NATSConnectionSettings?
    /// Ours: resource limits for this workload; the node's `workload_limits` fill what is unset.
    public var limits: ResourceLimits?

    enum CodingKeys: String, CodingKey {
        case argv, description, type, location, essential, workloadJWT = "workload_jwt", environment
        case jsDomain = "jsdomain", senderPublicKey = "sender_public_key", targetNode = "target_node"
        case triggerSubjects = "trigger_subjects", triggerConnection = "trigger_connection"
        case retryCount = "retry_count", retriedAt = "retried_at", hostServices = "host_services"
        case limits
    }

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
    public var started: Bool
    public var id: String
    public var issuer: String
    public var name: String

    public init(started: Bool, id: String, issuer: String, name: String) {
        self.started = started; self.id = id; self.issuer = issuer; self.name = name
    }
}

/// `$NEX.STOP.<ns>.<node>` request.
public struct StopRequest: Codable, Sendable, Equatable {
    public var workloadID: String
    public var workloadJWT: String
    public var targetNode: String

    enum CodingKeys: String, CodingKey { case workloadID = "workload_id", workloadJWT = "workload_jwt", targetNode = "target_node" }

    public init(workloadID: String, workloadJWT: String, targetNode: String) {
        self.workloadID = workloadID; self.workloadJWT = workloadJWT; self.targetNode = targetNode
    }
}

/// `$NEX.STOP` reply data.
public struct StopResponse: Codable, Sendable, Equatable {
    public var stopped: Bool
    public var id: String
    public var issuer: String
    public var name: String

    public init(stopped: Bool, id: String, issuer: String, name: String) {
        self.stopped = stopped; self.id = id; self.issuer = issuer; self.name = name
    }
}

/// Resource limits a deploy asks for (`limits` in ``DeployRequest``); absent values take the
/// node's defaults.
public struct ResourceLimits: Codable, Sendable, Equatable {
    /// Address space in bytes.
    public var memoryBytes: Int?
    public var openFiles: Int?
    public var processes: Int?

    enum CodingKeys: String, CodingKey { case memoryBytes = "memory_bytes", openFiles = "open_files", processes }

    public init(memoryBytes: Int? = nil, openFiles: Int? = nil, processes: Int? = nil) {
        self.memoryBytes = memoryBytes; self.openFiles = openFiles; self.processes = processes
    }
}
