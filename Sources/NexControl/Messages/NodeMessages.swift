/// `$NEX.PING` / `$NEX.PING.<node>` and `$NEX.AUCTION` reply data.
public struct PingResponse: Codable, Sendable, Equatable {
    /// `node_id`: the node's public server nkey (`N...`).
    public var nodeID: String
    /// `nexus`: the name of the node's nexus (cluster of nodes); nil when it has none.
    public var nexus: String?
    /// `version`: the node's version.
    public var version: String
    /// `uptime`: how long the node has run, NATS-server style: `1d2h3m4s`.
    public var uptime: String
    /// `target_xkey`: the node's public curve key (`X...`): seal deploy environments to it.
    public var targetXKey: String
    /// `tags`: the node's tags, including the automatic `nex.os`, `nex.arch`, `nex.cpucount` and
    /// `nex.lameduck`.
    public var tags: [String: String]?
    /// `running_machines`: the number of workloads running on the node.
    public var runningMachines: Int
    /// `sandboxed`: whether the node runs each workload in a sandbox of its own (false: its
    /// `no_sandbox` is set, and it is tagged `nex.unsafe`); nil from nodes that do not say.
    public var sandboxed: Bool?

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id", nexus, version, uptime, targetXKey = "target_xkey", tags
        case runningMachines = "running_machines", sandboxed
    }

    /// Ping or auction reply data.
    public init(nodeID: String, nexus: String? = nil, version: String, uptime: String, targetXKey: String,
                tags: [String: String]?, runningMachines: Int, sandboxed: Bool? = nil) {
        self.nodeID = nodeID; self.nexus = nexus; self.version = version; self.uptime = uptime
        self.targetXKey = targetXKey; self.tags = tags; self.runningMachines = runningMachines
        self.sandboxed = sandboxed
    }
}

/// `$NEX.AUCTION` request: every criterion given must match the node.
public struct AuctionRequest: Codable, Sendable, Equatable {
    /// `arch`: the CPU architecture the node must have (Go's names: `amd64`, `arm64`); nil matches any.
    public var arch: String?
    /// `os`: the operating system the node must run, e.g. `linux`; nil matches any.
    public var os: String?
    /// `sandboxed`: `true` asks for a node that sandboxes its workloads, `false` for one that
    /// does not (`no_sandbox`); nil matches any.
    public var sandboxed: Bool?
    /// `tags`: all must be present on the node; values compare case-insensitively.
    public var tags: [String: String]?
    /// `workload_types`: all must be allowed on the node.
    public var workloadTypes: [String]?

    enum CodingKeys: String, CodingKey { case arch, os, sandboxed, tags, workloadTypes = "workload_types" }

    /// An auction request; with no criteria (the default) every node answers.
    public init(arch: String? = nil, os: String? = nil, sandboxed: Bool? = nil, tags: [String: String]? = nil,
                workloadTypes: [String]? = nil) {
        self.arch = arch; self.os = os; self.sandboxed = sandboxed; self.tags = tags; self.workloadTypes = workloadTypes
    }
}

/// `$NEX.WPING.<ns>[.<id|name>]` reply data: sent only by nodes running a matching workload.
public struct WorkloadPingResponse: Codable, Sendable, Equatable {
    /// One matching workload in a ``WorkloadPingResponse``.
    public struct Machine: Codable, Sendable, Equatable {
        /// `id`: the workload id.
        public var id: String
        /// `namespace`: the workload's namespace.
        public var namespace: String
        /// `name`: the workload's name.
        public var name: String
        /// `type`: the workload type (`native`, `wasm`, `javascript`).
        public var type: String

        /// A workload entry.
        public init(id: String, namespace: String, name: String, type: String) {
            self.id = id; self.namespace = namespace; self.name = name; self.type = type
        }
    }

    /// `node_id`: the node's public server nkey (`N...`).
    public var nodeID: String
    /// `target_xkey`: the node's public curve key (`X...`).
    public var targetXKey: String
    /// `version`: the node's version.
    public var version: String
    /// `tags`: the node's tags.
    public var tags: [String: String]?
    /// `uptime`: how long the node has run, as `1d2h3m4s`.
    public var uptime: String
    /// `running_machines`: the matching workloads only.
    public var runningMachines: [Machine]

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id", targetXKey = "target_xkey", version, tags, uptime
        case runningMachines = "running_machines"
    }

    /// Workload ping reply data.
    public init(nodeID: String, targetXKey: String, version: String, tags: [String: String]?, uptime: String,
                runningMachines: [Machine]) {
        self.nodeID = nodeID; self.targetXKey = targetXKey; self.version = version; self.tags = tags
        self.uptime = uptime; self.runningMachines = runningMachines
    }
}

/// `$NEX.INFO.<ns>.<node>` reply data.
public struct InfoResponse: Codable, Sendable, Equatable {
    /// `memory`: the host's memory, in kB, from `/proc/meminfo`.
    public struct Memory: Codable, Sendable, Equatable {
        /// `total`: the host's memory, in kB (`MemTotal`).
        public var total: Int
        /// `free`: free memory, in kB (`MemFree`).
        public var free: Int
        /// `available`: memory available to new processes, in kB (`MemAvailable`).
        public var available: Int

        /// Memory figures in kB.
        public init(total: Int, free: Int, available: Int) {
            self.total = total; self.free = free; self.available = available
        }
    }

    /// `version`: the node's version.
    public var version: String
    /// `uptime`: how long the node has run, as `1d2h3m4s`.
    public var uptime: String
    /// `public_xkey`: the node's public curve key (`X...`): seal deploy environments to it.
    public var publicXKey: String
    /// `tags`: the node's tags.
    public var tags: [String: String]?
    /// `memory`: the host's memory; nil where it could not be read.
    public var memory: Memory?
    /// `machines`: the workloads of the requested namespace.
    public var machines: [MachineSummary]
    /// `supported_workload_types`: the workload types the node runs (its `workload_types`).
    public var supportedWorkloadTypes: [String]?
    /// `sandboxed`: whether the node runs each workload in a sandbox of its own.
    public var sandboxed: Bool?

    enum CodingKeys: String, CodingKey {
        case version, uptime, publicXKey = "public_xkey", tags, memory, machines
        case supportedWorkloadTypes = "supported_workload_types", sandboxed
    }

    /// Info reply data.
    public init(version: String, uptime: String, publicXKey: String, tags: [String: String]?, memory: Memory?,
                machines: [MachineSummary], supportedWorkloadTypes: [String]?, sandboxed: Bool? = nil) {
        self.version = version; self.uptime = uptime; self.publicXKey = publicXKey; self.tags = tags
        self.memory = memory; self.machines = machines; self.supportedWorkloadTypes = supportedWorkloadTypes
        self.sandboxed = sandboxed
    }
}

/// One workload in an ``InfoResponse``.
public struct MachineSummary: Codable, Sendable, Equatable {
    /// `workload`: what runs.
    public struct Workload: Codable, Sendable, Equatable {
        /// `name`: the workload's name.
        public var name: String
        /// `description`: the deploy's `description`, if any.
        public var description: String?
        /// `runtime`: functions: cumulative execution time; services: uptime.
        public var runtime: String
        /// `type`: the workload type (`native`, `wasm`, `javascript`).
        public var type: String
        /// `hash`: the SHA-256 of the artifact, hex.
        public var hash: String

        /// A workload description.
        public init(name: String, description: String?, runtime: String, type: String, hash: String) {
            self.name = name; self.description = description; self.runtime = runtime; self.type = type; self.hash = hash
        }
    }

    /// `id`: the workload id.
    public var id: String
    /// `healthy`: whether the workload is running now.
    public var healthy: Bool
    /// `uptime`: how long the workload has run, as `1d2h3m4s`.
    public var uptime: String
    /// `namespace`: the workload's namespace.
    public var namespace: String?
    /// `workload`: its name, type, artifact hash and runtime.
    public var workload: Workload
    /// `state`, ours (Nex 0.2 clients ignore it): `starting`, `running`, `restarting` or `stopping`.
    public var state: String?
    /// `restarts`: times an essential service was restarted.
    public var restarts: Int?
    /// `limits_applied`: the resource limits in force, e.g. `rlimit_as`, `rlimit_nofile`, `rlimit_nproc`, `cgroup`.
    public var limitsApplied: [String]?
    /// `log_lines_dropped`: output lines dropped by the node's log rate limit (`log_rate_limit`), nil when none.
    public var logLinesDropped: Int?

    enum CodingKeys: String, CodingKey {
        case id, healthy, uptime, namespace, workload, state, restarts, limitsApplied = "limits_applied"
        case logLinesDropped = "log_lines_dropped"
    }

    /// A workload summary; the fields Nex 0.2 does not know default to nil.
    public init(id: String, healthy: Bool, uptime: String, namespace: String?, workload: Workload,
                state: String? = nil, restarts: Int? = nil, limitsApplied: [String]? = nil, logLinesDropped: Int? = nil) {
        self.id = id; self.healthy = healthy; self.uptime = uptime; self.namespace = namespace; self.workload = workload
        self.state = state; self.restarts = restarts; self.limitsApplied = limitsApplied
        self.logLinesDropped = logLinesDropped
    }
}

/// `$NEX.LAMEDUCK.<node>` reply data.
public struct LameDuckResponse: Codable, Sendable, Equatable {
    /// `node_id`: the node's public server nkey (`N...`).
    public var nodeID: String
    /// `success`: whether the node entered lame duck mode.
    public var success: Bool

    enum CodingKeys: String, CodingKey { case nodeID = "node_id", success }

    /// Lame duck reply data.
    public init(nodeID: String, success: Bool) {
        self.nodeID = nodeID; self.success = success
    }
}
