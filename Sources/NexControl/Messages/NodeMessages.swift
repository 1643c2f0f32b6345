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
    /// `nexus_xkey`, ours: the public curve key shared by the nodes of the node's nexus
    /// (`nexus_xkey_seed_file`): seal a reschedulable workload's environment to it. Nil when
    /// the node has none (it then refuses reschedulable deploys).
    public var nexusXKey: String?

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id", nexus, version, uptime, targetXKey = "target_xkey", tags
        case runningMachines = "running_machines", sandboxed, nexusXKey = "nexus_xkey"
    }

    /// Ping or auction reply data.
    public init(nodeID: String, nexus: String? = nil, version: String, uptime: String, targetXKey: String,
                tags: [String: String]?, runningMachines: Int, sandboxed: Bool? = nil, nexusXKey: String? = nil) {
        self.nodeID = nodeID; self.nexus = nexus; self.version = version; self.uptime = uptime
        self.targetXKey = targetXKey; self.tags = tags; self.runningMachines = runningMachines
        self.sandboxed = sandboxed; self.nexusXKey = nexusXKey
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
        /// `state`, ours: `starting`, `running`, `restarting` or `stopping`; nil from nodes that do not say.
        public var state: String?
        /// `uptime`, ours: how long the workload has run, as `1d2h3m4s`.
        public var uptime: String?
        /// `restarts`, ours: how often an essential service was restarted.
        public var restarts: Int?
        /// `cpu_seconds`, ours: CPU time its sandbox has used (its cgroup, else its agent).
        public var cpuSeconds: Double?
        /// `memory_bytes`, ours: memory its sandbox uses now.
        public var memoryBytes: Int?

        enum CodingKeys: String, CodingKey {
            case id, namespace, name, type, state, uptime, restarts, cpuSeconds = "cpu_seconds", memoryBytes = "memory_bytes"
        }

        /// A workload entry.
        public init(id: String, namespace: String, name: String, type: String, state: String? = nil,
                    uptime: String? = nil, restarts: Int? = nil, cpuSeconds: Double? = nil, memoryBytes: Int? = nil) {
            self.id = id; self.namespace = namespace; self.name = name; self.type = type
            self.state = state; self.uptime = uptime; self.restarts = restarts
            self.cpuSeconds = cpuSeconds; self.memoryBytes = memoryBytes
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
    /// `nexus_xkey`, ours: the nexus's public curve key (see ``PingResponse/nexusXKey``).
    public var nexusXKey: String?

    enum CodingKeys: String, CodingKey {
        case version, uptime, publicXKey = "public_xkey", tags, memory, machines
        case supportedWorkloadTypes = "supported_workload_types", sandboxed, nexusXKey = "nexus_xkey"
    }

    /// Info reply data.
    public init(version: String, uptime: String, publicXKey: String, tags: [String: String]?, memory: Memory?,
                machines: [MachineSummary], supportedWorkloadTypes: [String]?, sandboxed: Bool? = nil,
                nexusXKey: String? = nil) {
        self.version = version; self.uptime = uptime; self.publicXKey = publicXKey; self.tags = tags
        self.memory = memory; self.machines = machines; self.supportedWorkloadTypes = supportedWorkloadTypes
        self.sandboxed = sandboxed
        self.nexusXKey = nexusXKey
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
        /// `type`: the workload type (`native`, `wasm`, `javascript`, `v8`).
        public var type: String
        /// `hash`: the SHA-256 of the artifact, hex.
        public var hash: String
        /// `unverified` (ours): true when the deploy token's hash was not a SHA-256 digest and
        /// the node ran the artifact anyway (`allow_unverified_hash`); absent otherwise.
        public var unverified: Bool?

        /// A workload description.
        public init(name: String, description: String?, runtime: String, type: String, hash: String,
                    unverified: Bool? = nil) {
            self.name = name; self.description = description; self.runtime = runtime; self.type = type; self.hash = hash
            self.unverified = unverified
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

/// `$NEX.LAMEDUCK.<node>` request (Nex HEAD's): an empty body (Nex 0.2) is the same as no delay.
public struct LameDuckRequest: Codable, Sendable, Equatable {
    /// `delay`: a Go duration (`30s`, `1m30s`, `500ms`): how long running workloads may go on
    /// before the node exits; reschedulable services move to other nodes of the nexus at once.
    /// Nil: the node stays up in lame duck mode until it is stopped.
    public var delay: String?

    enum CodingKeys: String, CodingKey { case delay }

    /// A lame duck request.
    public init(delay: String? = nil) { self.delay = delay }

    /// ``delay`` as a `Duration`, nil when there is none.
    ///
    /// - Throws: ``NexControlError/badRequest(_:)`` naming the field when it is not a Go duration
    ///   of at most a day.
    public func parsedDelay() throws(NexControlError) -> Duration? {
        guard let delay else { return nil }
        guard let duration = GoDuration.parse(delay), duration <= .seconds(86_400) else {
            throw .badRequest("delay '\(delay.prefix(40))' is not a duration of at most 24h (e.g. 30s, 1m30s, 500ms)")
        }
        return duration
    }
}

/// Go's `time.Duration` text (`1h2m3.5s`, `500ms`, `0`), as Nex HEAD's requests carry it.
public enum GoDuration {
    /// The duration, or nil when `text` is not one (negative durations are refused).
    public static func parse(_ text: String) -> Duration? {
        if text == "0" { return .zero }
        let units: [(String, Double)] = [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        var rest = Substring(text)
        var seconds = 0.0
        guard !rest.isEmpty, rest.count <= 64 else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            guard let unit = units.filter({ rest.hasPrefix($0.0) }).max(by: { $0.0.count < $1.0.count }) else { return nil }
            rest = rest.dropFirst(unit.0.count)
            seconds += value * unit.1
        }
        // At most about 31 years: beyond, the nanoseconds would not fit an Int64.
        guard seconds.isFinite, seconds <= 1e9 else { return nil }
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// `duration` as Go writes it, to the millisecond: `1500ms`, `30s`.
    public static func format(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}

/// `$NEX.LAMEDUCK.<node>` reply data.
public struct LameDuckResponse: Codable, Sendable, Equatable {
    /// `node_id`: the node's public server nkey (`N...`).
    public var nodeID: String
    /// `success`: whether the node entered lame duck mode.
    public var success: Bool
    /// `message` (Nex HEAD's): what the node will do, e.g. when it exits.
    public var message: String?

    enum CodingKeys: String, CodingKey { case nodeID = "node_id", success, message }

    /// Lame duck reply data.
    public init(nodeID: String, success: Bool, message: String? = nil) {
        self.nodeID = nodeID; self.success = success; self.message = message
    }
}
