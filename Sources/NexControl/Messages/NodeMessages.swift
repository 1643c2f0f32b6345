/// `$NEX.PING` / `$NEX.PING.<node>` and `$NEX.AUCTION` reply data.
public struct PingResponse: Codable, Sendable, Equatable {
    public var nodeID: String
    public var nexus: String?
    public var version: String
    /// Go/NATS-server style duration: `1d2h3m4s`.
    public var uptime: String
    /// The node's public curve key (`X...`): seal deploy environments to it.
    public var targetXKey: String
    public var tags: [String: String]?
    public var runningMachines: Int

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id", nexus, version, uptime, targetXKey = "target_xkey", tags
        case runningMachines = "running_machines"
    }

    public init(nodeID: String, nexus: String? = nil, version: String, uptime: String, targetXKey: String,
                tags: [String: String]?, runningMachines: Int) {
        self.nodeID = nodeID; self.nexus = nexus; self.version = version; self.uptime = uptime
        self.targetXKey = targetXKey; self.tags = tags; self.runningMachines = runningMachines
    }
}

/// `$NEX.AUCTION` request: every criterion given must match the node.
public struct AuctionRequest: Codable, Sendable, Equatable {
    public var arch: String?
    public var os: String?
    public var sandboxed: Bool?
    /// All must be present on the node; values compare case-insensitively.
    public var tags: [String: String]?
    /// All must be allowed on the node.
    public var workloadTypes: [String]?

    enum CodingKeys: String, CodingKey { case arch, os, sandboxed, tags, workloadTypes = "workload_types" }

    public init(arch: String? = nil, os: String? = nil, sandboxed: Bool? = nil, tags: [String: String]? = nil,
                workloadTypes: [String]? = nil) {
        self.arch = arch; self.os = os; self.sandboxed = sandboxed; self.tags = tags; self.workloadTypes = workloadTypes
    }
}

/// `$NEX.WPING.<ns>[.<id|name>]` reply data: sent only by nodes running a matching workload.
public struct WorkloadPingResponse: Codable, Sendable, Equatable {
    public struct Machine: Codable, Sendable, Equatable {
        public var id: String
        public var namespace: String
        public var name: String
        public var type: String

        public init(id: String, namespace: String, name: String, type: String) {
            self.id = id; self.namespace = namespace; self.name = name; self.type = type
        }
    }

    public var nodeID: String
    public var targetXKey: String
    public var version: String
    public var tags: [String: String]?
    public var uptime: String
    public var runningMachines: [Machine]

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id", targetXKey = "target_xkey", version, tags, uptime
        case runningMachines = "running_machines"
    }

    public init(nodeID: String, targetXKey: String, version: String, tags: [String: String]?, uptime: String,
                runningMachines: [Machine]) {
        self.nodeID = nodeID; self.targetXKey = targetXKey; self.version = version; self.tags = tags
        self.uptime = uptime; self.runningMachines = runningMachines
    }
}

/// `$NEX.INFO.<ns>.<node>` reply data.
public struct InfoResponse: Codable, Sendable, Equatable {
    public struct Memory: Codable, Sendable, Equatable {
        /// kB, from /proc/meminfo.
        public var total: Int
        public var free: Int
        public var available: Int

        public init(total: Int, free: Int, available: Int) {
            self.total = total; self.free = free; self.available = available
        }
    }

    public var version: String
    public var uptime: String
    public var publicXKey: String
    public var tags: [String: String]?
    public var memory: Memory?
    public var machines: [MachineSummary]
    public var supportedWorkloadTypes: [String]?

    enum CodingKeys: String, CodingKey {
        case version, uptime, publicXKey = "public_xkey", tags, memory, machines
        case supportedWorkloadTypes = "supported_workload_types"
    }

    public init(version: String, uptime: String, publicXKey: String, tags: [String: String]?, memory: Memory?,
                machines: [MachineSummary], supportedWorkloadTypes: [String]?) {
        self.version = version; self.uptime = uptime; self.publicXKey = publicXKey; self.tags = tags
        self.memory = memory; self.machines = machines; self.supportedWorkloadTypes = supportedWorkloadTypes
    }
}

/// One workload in an ``InfoResponse``.
public struct MachineSummary: Codable, Sendable, Equatable {
    public struct Workload: Codable, Sendable, Equatable {
        public var name: String
        public var description: String?
        /// Functions: cumulative execution time; services: uptime.
        public var runtime: String
        public var type: String
        /// SHA-256 of the artifact, hex.
        public var hash: String

        public init(name: String, description: String?, runtime: String, type: String, hash: String) {
            self.name = name; self.description = description; self.runtime = runtime; self.type = type; self.hash = hash
        }
    }

    public var id: String
    public var healthy: Bool
    public var uptime: String
    public var namespace: String?
    public var workload: Workload
    /// Ours (Nex 0.2 clients ignore them): `starting`, `running`, `restarting` or `stopping`.
    public var state: String?
    /// Times an essential service was restarted.
    public var restarts: Int?
    /// Resource limits in force, e.g. `rlimit_as`, `rlimit_nofile`, `rlimit_nproc`, `cgroup`.
    public var limitsApplied: [String]?
    /// Output lines dropped by the node's log rate limit (`log_rate_limit`), nil when none.
    public var logLinesDropped: Int?

    enum CodingKeys: String, CodingKey {
        case id, healthy, uptime, namespace, workload, state, restarts, limitsApplied = "limits_applied"
        case logLinesDropped = "log_lines_dropped"
    }

    public init(id: String, healthy: Bool, uptime: String, namespace: String?, workload: Workload,
                state: String? = nil, restarts: Int? = nil, limitsApplied: [String]? = nil, logLinesDropped: Int? = nil) {
        self.id = id; self.healthy = healthy; self.uptime = uptime; self.namespace = namespace; self.workload = workload
        self.state = state; self.restarts = restarts; self.limitsApplied = limitsApplied
        self.logLinesDropped = logLinesDropped
    }
}

/// `$NEX.LAMEDUCK.<node>` reply data.
public struct LameDuckResponse: Codable, Sendable, Equatable {
    public var nodeID: String
    public var success: Bool

    enum CodingKeys: String, CodingKey { case nodeID = "node_id", success }

    public init(nodeID: String, success: Bool) {
        self.nodeID = nodeID; self.success = success
    }
}
