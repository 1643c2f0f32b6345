import NexAgentBus
import NexWorkloads
import FoundationEssentials
import NATSWire
import NexControl
import NexTelemetry

/// The node's configuration file (JSON), with Nex 0.2's key names where they apply.
///
/// Unknown keys and bad values are refused when the node starts, with the key named:
/// a typo must not silently become a default. Every key is listed in `docs/configuration.md`.
public struct NodeConfiguration: Sendable, Equatable {
    /// Limits on what the node accepts (`node_limits`). 0 means unlimited.
    public struct Limits: Sendable, Equatable {
        public var maxWorkloads = 0
        public var maxTotalBytes = 0
        public var maxWorkloadBytes = 0
        /// Deploys the node works on at once (`max_concurrent_deploys`, at least 1); more are
        /// refused at once, so a flood of deploys cannot become a flood of agents.
        public var maxConcurrentDeploys = 4
        public init() {}
    }

    /// The connection host services use on behalf of functions (`host_services`).
    public struct HostServices: Sendable, Equatable {
        public var natsURL: String?
        public var natsUserJWT: String?
        public var natsUserSeed: String?
        /// TLS of that connection (`host_services.tls`: `cert`, `key`, `ca`, `first`).
        public var tls: NATSTLSOptions?
        /// Each service's settings and whether it is enabled (`host_services.services`).
        public var configuration = HostServicesConfiguration()
        public init() {}
    }

    /// Functions' agents serve their own triggers on connections the node makes, with user
    /// JWTs it signs (`direct_triggers`): see `docs/functions.md`.
    public struct DirectTriggers: Sendable, Equatable {
        /// A file holding the seed (`SA...`) of the workload account's key or of one of its
        /// signing keys (`signing_key_file`).
        public var signingKeyFile: String
        /// The account's public key, when the key above is a signing key (`account`).
        public var account: String?
        /// How long each JWT is valid (`ttl_seconds`, 10 to 86400); renewed at two thirds. Short:
        /// a JWT stays valid after its function stops, until it expires.
        public var lifetimeSeconds = 600.0

        public init(signingKeyFile: String, account: String? = nil, lifetimeSeconds: Double = 600) {
            self.signingKeyFile = signingKeyFile; self.account = account; self.lifetimeSeconds = lifetimeSeconds
        }
    }

    public var tags: [String: String] = [:]
    /// Nil: the node relays every function invocation itself.
    public var directTriggers: DirectTriggers?
    public var validIssuers: [String] = []
    public var workloadTypes: [WorkloadType] = [.native]
    public var nodeLimits = Limits()
    public var denyTriggerSubjects: [String] = []
    public var machinePoolSize = 1
    public var hostServices = HostServices()
    public var agentHandshakeTimeoutMilliseconds = 5000
    public var agentPingTimeoutMilliseconds = 750
    /// Where identity keys and caches live (`state_dir`).
    public var stateDirectory: String?
    /// The control connection (ours): where the node is driven from (`control`).
    public var control = ControlConnectionSettings()
    /// Seconds between `heartbeat` events.
    public var heartbeatIntervalSeconds = 30.0
    /// Seconds a workload gets between SIGTERM and SIGKILL when stopped.
    public var stopGracePeriodSeconds = 10.0
    /// The `nex-agent` executable (`agent_path`); default: beside `nex-node`, else on PATH.
    public var agentPath: String?
    /// Default resource limits for workloads (`workload_limits`); a deploy's `limits` override them.
    public var workloadLimits = ResourceLimits()
    /// The most a deploy's `limits` may ask for (`max_workload_limits`); unset: no maximum.
    public var maxWorkloadLimits = ResourceLimits()
    /// How fast one workload's output reaches the node (`log_rate_limit`); lines over it are
    /// dropped by the agent and counted (see ``LogRateLimiter``).
    public var logRateLimit = LogRate.default
    /// Directories `file://` artifacts may be read from (`allowed_file_roots`); none by default,
    /// so a deployer cannot name a file of this host (see ``ArtifactFileRoots``).
    public var allowedFileRoots: [String] = []
    /// Run agents and their workloads unsandboxed, as plain processes of the node's user
    /// (`no_sandbox`, Nex 0.2's key): the node is then tagged `nex.unsafe=true`. Off by
    /// default: each agent gets a Linux sandbox of its own (see `docs/isolation.md`).
    public var noSandbox = false
    /// The nexus (the group of nodes that work together) this node belongs to (`nexus`):
    /// reported by PING and heartbeats as Nex 0.2 does.
    public var nexus: String?
    /// The JetStream key-value bucket where the node records the workloads it runs
    /// (`state_bucket`), to bring them back after a restart.
    public var stateBucket = "nex_node_state"
    /// Its replicas (`state_replicas`): 3 on a cluster.
    public var stateReplicas = 1
    /// A file holding the nexus's curve seed (`nexus_xkey_seed_file`, `SX...`), the same on
    /// every node of the nexus: environments of reschedulable workloads are sealed to its
    /// public key, so any node of the nexus can open them. Needs `nexus`.
    public var nexusXKeySeedFile: String?
    /// How long a node of the nexus may go unseen before its reschedulable workloads are
    /// started elsewhere (`reschedule_after_seconds`, at least 2).
    public var rescheduleAfterSeconds = 10.0
    /// Workloads the node deploys itself when it starts (`autostart.workloads`, Nex 0.2's key).
    public var autostart: [AutostartWorkload] = []
    /// The issuers whose stop JWTs stop an autostart workload (`autostart.stop_issuers`, ours):
    /// the operator's keys; none by default (then only a config change stops one).
    public var autostartStopIssuers: [String] = []
    /// Run artifacts whose deploy token's `hash` is not a SHA-256 digest (`allow_unverified_hash`):
    /// Nex 0.2's CLI sends a placeholder. Off by default; when on, the node warns at start and
    /// at each such deploy, and `info` marks those workloads `unverified`.
    public var allowUnverifiedHash = false
    /// Nex 0.2 keys the file set that this node has no use for, each with why: accepted so a
    /// 0.2 config starts, and logged as one warning each at start.
    public var ignoredKeys: [IgnoredKey] = []
    /// Prometheus metrics at `http://<address>:<port>/metrics` (`otel_metrics`,
    /// `otel_metrics_port` as Nex 0.2 names them, and ours `metrics_address`).
    public var metrics = MetricsSettings()

    /// Traces over OTLP/HTTP (`otel_traces`, `otel_traces_exporter` = `http`,
    /// `otlp_exporter_url`, as Nex 0.2 names them).
    public var traces = TracesSettings()

    /// Whether and where the node sends its spans.
    public struct TracesSettings: Sendable, Equatable {
        public var enabled = false
        /// The collector's base URL (`/v1/traces` is added); `host:port` means `http://host:port`.
        public var endpoint = "http://127.0.0.1:4318"
        public init() {}
    }

    /// Where and whether the node serves its metrics.
    public struct MetricsSettings: Sendable, Equatable {
        public var enabled = false
        /// Nex 0.2's default; 0 picks a free port (the node logs the URL).
        public var port = 8085
        /// Loopback unless the operator names another address.
        public var address = "127.0.0.1"
        public init() {}
    }

    /// A Nex 0.2 config key this node reads past (``NodeConfiguration/ignoredKeys``).
    public struct IgnoredKey: Sendable, Equatable, CustomStringConvertible {
        public var key: String
        public var reason: String
        public var description: String { "config key '\(key)' is Nex 0.2's and ignored here: \(reason)" }
    }

    /// Nex 0.2's node config keys with no meaning for this node, and why.
    static let nex02IgnoredKeys: [String: String] = [
        "bin_path": "executables are found beside nex-node or on PATH (agent_path)",
        "cni": "no Firecracker VMs, so no CNI network (see docs/isolation.md)",
        "default_resource_dir": "no Firecracker kernel or root file system",
        "kernel_filepath": "no Firecracker kernel",
        "rootfs_filepath": "no Firecracker root file system",
        "machine_template": "no VMs; per-workload limits are workload_limits",
        "rate_limiters": "no VM rate limiters (Nex 0.2 did not apply them either); see log_rate_limit",
        "preserve_network": "no CNI network to preserve",
        "internal_node_host": "the agent bus listens on loopback only",
        "internal_node_port": "the agent bus takes its own port",
        "pid_filepath": "run under systemd (Type=notify) for one node per state_dir",
        "public_nats_server": "no embedded public server; connect to your NATS system (control.servers, --server)",
        "otel_metrics_exporter": "metrics are served in Prometheus format only",
    ]

    public init() {}
}

/// A workload the node deploys itself at start (`autostart.workloads[i]`, Nex 0.2's fields).
///
/// The node is its own issuer for these: it signs their deploy JWT with a key it makes at
/// start and seals their environment to itself; `valid_issuers` is not asked. They are not
/// recorded in the state bucket (the config brings them back), and only a stop JWT of an
/// issuer in `autostart.stop_issuers` (the operator's) stops one.
public struct AutostartWorkload: Sendable, Equatable {
    public var name: String
    public var namespace = "default"
    public var type: String
    /// `nats://BUCKET/KEY` or `file:///path` (under `allowed_file_roots`).
    public var location: String
    public var argv: [String]?
    public var description: String?
    public var essential: Bool?
    public var jsDomain: String?
    /// In clear in the config file: the node seals it to itself.
    public var environment: [String: String] = [:]
    public var triggerSubjects: [String]?
    /// Ours: limits as a deploy's `limits`.
    public var limits: ResourceLimits?

    public init(name: String, type: String, location: String) {
        self.name = name; self.type = type; self.location = location
    }

    init(_ reader: inout ConfigReader) throws(NodeConfigurationError) {
        guard let name = try reader.string("name"), let type = try reader.string("type"),
              let location = try reader.string("location")
        else {
            throw NodeConfigurationError(key: reader.path, problem: "needs name, type and location")
        }
        self.init(name: name, type: type, location: location)
        namespace = try reader.string("namespace") ?? namespace
        argv = try reader.strings("argv")
        description = try reader.string("description")
        essential = try reader.bool("essential")
        jsDomain = try reader.string("jsdomain")
        environment = try reader.stringMap("environment") ?? [:]
        triggerSubjects = try reader.strings("trigger_subjects")
        if var limits = try reader.object("limits") { self.limits = try ResourceLimits(&limits) }
        try reader.finish()
        do {
            try WorkloadClaims.validateName(name)
            try NexSubject.validateNamespace(namespace)
            guard namespace != NexSubject.systemNamespace else {
                throw NexControlError.badRequest("namespace '\(namespace)' is the node's own: autostart workloads into another namespace")
            }
            _ = try ArtifactLocation(validating: location)
        } catch {
            throw NodeConfigurationError(key: reader.path, problem: "\(error)")
        }
        guard WorkloadType(name: type) != nil else {
            throw NodeConfigurationError(key: "\(reader.path).type", problem: "unknown workload type '\(type)'")
        }
    }
}

/// A configuration problem, naming the key (`node_limits.max_workloads`) and what is wrong.
public struct NodeConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var problem: String

    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }

    public var description: String { key.isEmpty ? problem : "config key '\(key)': \(problem)" }
}

extension NodeConfiguration {
    /// Reads and validates a configuration file.
    public init(contentsOf path: String) throws(NodeConfigurationError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NodeConfigurationError(key: "", problem: "cannot read config file \(path)")
        }
        try self.init(json: data)
    }

    /// Parses and validates configuration JSON.
    public init(json data: Data) throws(NodeConfigurationError) {
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw NodeConfigurationError(key: "", problem: "config is not valid JSON: \(error)")
        }
        var reader = try ConfigReader(root, path: "")
        self.init()
        tags = try reader.stringMap("tags") ?? tags
        validIssuers = try reader.strings("valid_issuers") ?? validIssuers
        if let names = try reader.strings("workload_types") {
            workloadTypes = try names.map { name throws(NodeConfigurationError) in
                guard let type = WorkloadType(name: name) else {
                    throw NodeConfigurationError(key: "workload_types", problem: "unknown workload type '\(name)' (native, wasm, javascript, v8)")
                }
                return type
            }
        }
        if var limits = try reader.object("node_limits") {
            nodeLimits.maxWorkloads = try limits.count("max_workloads") ?? 0
            nodeLimits.maxTotalBytes = try limits.count("max_total_bytes") ?? 0
            nodeLimits.maxWorkloadBytes = try limits.count("max_workload_bytes") ?? 0
            nodeLimits.maxConcurrentDeploys = try limits.count("max_concurrent_deploys") ?? nodeLimits.maxConcurrentDeploys
            try limits.finish()
        }
        denyTriggerSubjects = try reader.strings("deny_trigger_subjects") ?? []
        machinePoolSize = try reader.count("machine_pool_size") ?? machinePoolSize
        if var services = try reader.object("host_services") {
            hostServices.natsURL = try services.string("nats_url")
            hostServices.natsUserJWT = try services.string("nats_user_jwt")
            hostServices.natsUserSeed = try services.string("nats_user_seed")
            if var tls = try services.object("tls") { hostServices.tls = try Self.tls(&tls) }
            hostServices.configuration = try HostServicesConfiguration.parse(services: try services.any("services"))
            if let cap = try services.count("max_calls_in_flight_per_agent") {
                guard cap > 0 else {
                    throw NodeConfigurationError(key: "host_services.max_calls_in_flight_per_agent", problem: "must be a whole number > 0")
                }
                hostServices.configuration.maxCallsInFlightPerAgent = cap
            }
            if let cap = try services.count("max_calls_in_flight") {
                guard cap > 0 else {
                    throw NodeConfigurationError(key: "host_services.max_calls_in_flight", problem: "must be a whole number > 0")
                }
                hostServices.configuration.maxCallsInFlight = cap
            }
            try services.finish()
        }
        if var section = try reader.object("direct_triggers") {
            guard let file = try section.string("signing_key_file") else {
                throw NodeConfigurationError(key: "direct_triggers.signing_key_file",
                                             problem: "is required: the account key that signs the agents' JWTs")
            }
            var direct = DirectTriggers(signingKeyFile: file, account: try section.string("account"))
            direct.lifetimeSeconds = try section.seconds("ttl_seconds") ?? direct.lifetimeSeconds
            try section.finish()
            directTriggers = direct
        }
        agentHandshakeTimeoutMilliseconds = try reader.count("agent_handshake_timeout_ms") ?? agentHandshakeTimeoutMilliseconds
        agentPingTimeoutMilliseconds = try reader.count("agent_ping_timeout_ms") ?? agentPingTimeoutMilliseconds
        stateDirectory = try reader.string("state_dir")
        if var control = try reader.object("control") {
            self.control.servers = try control.strings("servers") ?? []
            self.control.credsFile = try control.string("creds")
            self.control.nkeySeedFile = try control.string("nkey")
            self.control.user = try control.string("user")
            self.control.password = try control.string("password")
            self.control.token = try control.string("token")
            self.control.context = try control.string("context")
            if var tls = try control.object("tls") {
                let options = try Self.tls(&tls)
                self.control.tlsCertificate = options.certificateFile
                self.control.tlsKey = options.keyFile
                self.control.tlsCA = options.caFile
                self.control.tlsFirst = options.handshakeFirst ? true : nil
            }
            try control.finish()
        }
        heartbeatIntervalSeconds = try reader.seconds("heartbeat_interval_seconds") ?? heartbeatIntervalSeconds
        stopGracePeriodSeconds = try reader.seconds("stop_grace_period_seconds") ?? stopGracePeriodSeconds
        agentPath = try reader.string("agent_path")
        allowedFileRoots = try reader.strings("allowed_file_roots") ?? []
        noSandbox = try reader.bool("no_sandbox") ?? noSandbox
        allowUnverifiedHash = try reader.bool("allow_unverified_hash") ?? allowUnverifiedHash
        metrics.enabled = try reader.bool("otel_metrics") ?? metrics.enabled
        metrics.port = try reader.count("otel_metrics_port") ?? metrics.port
        metrics.address = try reader.string("metrics_address") ?? metrics.address
        traces.enabled = try reader.bool("otel_traces") ?? traces.enabled
        traces.endpoint = try reader.string("otlp_exporter_url") ?? traces.endpoint
        if let exporter = try reader.string("otel_traces_exporter"), exporter != "http" {
            throw NodeConfigurationError(key: "otel_traces_exporter", problem: "'\(exporter)' is not offered: traces go over OTLP/HTTP (http)")
        }
        nexus = try reader.string("nexus")
        stateBucket = try reader.string("state_bucket") ?? stateBucket
        stateReplicas = try reader.count("state_replicas") ?? stateReplicas
        nexusXKeySeedFile = try reader.string("nexus_xkey_seed_file")
        rescheduleAfterSeconds = try reader.seconds("reschedule_after_seconds") ?? rescheduleAfterSeconds
        if var section = try reader.object("autostart") {
            autostart = try (section.objects("workloads") ?? []).map { entry throws(NodeConfigurationError) in
                var entry = entry
                return try AutostartWorkload(&entry)
            }
            autostartStopIssuers = try section.strings("stop_issuers") ?? []
            try section.finish()
        }
        if var rate = try reader.object("log_rate_limit") {
            logRateLimit.linesPerSecond = try rate.count("lines_per_second") ?? logRateLimit.linesPerSecond
            logRateLimit.bytesPerSecond = try rate.count("bytes_per_second") ?? logRateLimit.bytesPerSecond
            try rate.finish()
        }
        for (key, target) in [("workload_limits", \NodeConfiguration.workloadLimits),
                              ("max_workload_limits", \NodeConfiguration.maxWorkloadLimits)] {
            guard var limits = try reader.object(key) else { continue }
            self[keyPath: target] = try ResourceLimits(&limits)
        }
        ignoredKeys = reader.skip(Self.nex02IgnoredKeys.keys.sorted()).map {
            IgnoredKey(key: $0, reason: Self.nex02IgnoredKeys[$0] ?? "")
        }
        try reader.finish()
        try validate()
    }

    /// A `tls` block: `cert` and `key` (a client certificate, both or neither), `ca`, `first`.
    static func tls(_ reader: inout ConfigReader) throws(NodeConfigurationError) -> NATSTLSOptions {
        let cert = try reader.string("cert"), key = try reader.string("key")
        let options = NATSTLSOptions(caFile: try reader.string("ca"), certificateFile: cert, keyFile: key,
                                     handshakeFirst: try reader.bool("first") ?? false)
        try reader.finish()
        guard (cert == nil) == (key == nil) else {
            throw NodeConfigurationError(key: reader.path, problem: "cert and key go together: a client certificate needs its key")
        }
        return options
    }

    /// Checks values that are each well-typed but together or alone not acceptable.
    public func validate() throws(NodeConfigurationError) {
        guard machinePoolSize >= 1 else {
            throw NodeConfigurationError(key: "machine_pool_size", problem: "must be at least 1")
        }
        for issuer in validIssuers where !NKeyPair.isValidPublicKey(issuer) {
            throw NodeConfigurationError(key: "valid_issuers", problem: "'\(issuer)' is not a public nkey")
        }
        for issuer in autostartStopIssuers where !NKeyPair.isValidPublicKey(issuer) {
            throw NodeConfigurationError(key: "autostart.stop_issuers", problem: "'\(issuer)' is not a public nkey")
        }
        for (key, _) in tags where key.isEmpty || key.contains(where: \.isWhitespace) {
            throw NodeConfigurationError(key: "tags", problem: "tag names must be non-empty without blanks ('\(key)')")
        }
        for subject in denyTriggerSubjects {
            do { try NATSSubject.validateSubscribe(subject) } catch {
                throw NodeConfigurationError(key: "deny_trigger_subjects", problem: "\(error)")
            }
        }
        guard logRateLimit.linesPerSecond >= 1, logRateLimit.bytesPerSecond >= 1 else {
            throw NodeConfigurationError(key: "log_rate_limit", problem: "lines_per_second and bytes_per_second must be at least 1")
        }
        guard nodeLimits.maxConcurrentDeploys >= 1 else {
            throw NodeConfigurationError(key: "node_limits.max_concurrent_deploys", problem: "must be at least 1")
        }
        if let nexus, nexus.isEmpty || nexus.contains(where: { $0.isWhitespace || $0 == "." || $0 == "*" || $0 == ">" }) {
            throw NodeConfigurationError(key: "nexus", problem: "'\(nexus)' is not a plain token (no blanks, '.', '*' or '>')")
        }
        guard !stateBucket.isEmpty, stateBucket.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw NodeConfigurationError(key: "state_bucket", problem: "'\(stateBucket)' is not a bucket name (letters, digits, '_' and '-')")
        }
        guard (1...5).contains(stateReplicas) else {
            throw NodeConfigurationError(key: "state_replicas", problem: "must be 1 to 5")
        }
        if nexusXKeySeedFile != nil, nexus == nil {
            throw NodeConfigurationError(key: "nexus_xkey_seed_file", problem: "needs nexus: the key is shared by the nodes of one nexus")
        }
        guard rescheduleAfterSeconds >= 2 else {
            throw NodeConfigurationError(key: "reschedule_after_seconds", problem: "must be at least 2 (nodes refresh their liveness every second)")
        }
        if let directTriggers {
            guard directTriggers.signingKeyFile.hasPrefix("/") else {
                throw NodeConfigurationError(key: "direct_triggers.signing_key_file",
                                             problem: "'\(directTriggers.signingKeyFile)' is not an absolute path")
            }
            if let account = directTriggers.account, !(account.hasPrefix("A") && NKeyPair.isValidPublicKey(account)) {
                throw NodeConfigurationError(key: "direct_triggers.account", problem: "'\(account)' is not an account public key")
            }
            guard (10...86400).contains(directTriggers.lifetimeSeconds) else {
                throw NodeConfigurationError(key: "direct_triggers.ttl_seconds", problem: "must be 10 to 86400")
            }
        }
        for root in allowedFileRoots where !root.hasPrefix("/") {
            throw NodeConfigurationError(key: "allowed_file_roots", problem: "'\(root)' is not an absolute path")
        }
        for (name, value, maximum) in workloadLimits.each(against: maxWorkloadLimits) {
            if let value, let maximum, maximum > 0, value > maximum {
                throw NodeConfigurationError(key: "workload_limits.\(name)",
                                             problem: "\(value) is above max_workload_limits.\(name) \(maximum)")
            }
        }
        guard heartbeatIntervalSeconds > 0 else {
            throw NodeConfigurationError(key: "heartbeat_interval_seconds", problem: "must be greater than 0")
        }
        guard stopGracePeriodSeconds >= 0 else {
            throw NodeConfigurationError(key: "stop_grace_period_seconds", problem: "must not be negative")
        }
        if traces.enabled {
            do {
                _ = try OTLPExporter.Endpoint(url: traces.endpoint)
            } catch {
                throw NodeConfigurationError(key: "otlp_exporter_url", problem: "\(error)")
            }
        }
        guard (0...65535).contains(metrics.port) else {
            throw NodeConfigurationError(key: "otel_metrics_port", problem: "\(metrics.port) is not a port (0 to 65535)")
        }
        guard !metrics.address.isEmpty, !metrics.address.contains(where: \.isWhitespace) else {
            throw NodeConfigurationError(key: "metrics_address", problem: "'\(metrics.address)' is not an address")
        }
        for server in control.servers where server.isEmpty {
            throw NodeConfigurationError(key: "control.servers", problem: "empty server URL")
        }
    }
}

/// Reads one JSON object key by key, remembering which keys were read so the rest can be
/// refused as unknown, and naming the full key path in every error.
struct ConfigReader {
    private var object: [String: JSONValue]
    private var seen: Set<String> = []
    let path: String

    init(_ value: JSONValue, path: String) throws(NodeConfigurationError) {
        guard case .object(let object) = value else {
            throw NodeConfigurationError(key: path, problem: "must be a JSON object")
        }
        self.object = object
        self.path = path
    }

    var keys: [String] { object.keys.sorted() }

    private func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    mutating func any(_ key: String) throws(NodeConfigurationError) -> JSONValue? {
        seen.insert(key)
        guard let value = object[key] else { return nil }
        if case .null = value { return nil }
        return value
    }

    mutating func string(_ key: String) throws(NodeConfigurationError) -> String? {
        guard let value = try any(key) else { return nil }
        guard case .string(let text) = value else { throw NodeConfigurationError(key: name(key), problem: "must be a string") }
        return text
    }

    mutating func bool(_ key: String) throws(NodeConfigurationError) -> Bool? {
        guard let value = try any(key) else { return nil }
        guard case .bool(let flag) = value else { throw NodeConfigurationError(key: name(key), problem: "must be true or false") }
        return flag
    }

    /// A non-negative whole number.
    mutating func count(_ key: String) throws(NodeConfigurationError) -> Int? {
        guard let value = try any(key) else { return nil }
        guard let number = value.intValue, number >= 0 else {
            throw NodeConfigurationError(key: name(key), problem: "must be a whole number >= 0")
        }
        return Int(number)
    }

    mutating func seconds(_ key: String) throws(NodeConfigurationError) -> Double? {
        guard let value = try any(key) else { return nil }
        guard let number = value.doubleValue else { throw NodeConfigurationError(key: name(key), problem: "must be a number of seconds") }
        return number
    }

    mutating func strings(_ key: String) throws(NodeConfigurationError) -> [String]? {
        guard let value = try any(key) else { return nil }
        guard case .array(let items) = value else { throw NodeConfigurationError(key: name(key), problem: "must be an array of strings") }
        return try items.map { item throws(NodeConfigurationError) in
            guard case .string(let text) = item else {
                throw NodeConfigurationError(key: name(key), problem: "must be an array of strings")
            }
            return text
        }
    }

    mutating func stringMap(_ key: String) throws(NodeConfigurationError) -> [String: String]? {
        guard let value = try any(key) else { return nil }
        guard case .object(let entries) = value else { throw NodeConfigurationError(key: name(key), problem: "must be an object of strings") }
        var map: [String: String] = [:]
        for (entryKey, entry) in entries {
            guard case .string(let text) = entry else {
                throw NodeConfigurationError(key: name("\(key).\(entryKey)"), problem: "must be a string")
            }
            map[entryKey] = text
        }
        return map
    }

    /// An array of objects, each read by its own reader (named `key[i]`).
    mutating func objects(_ key: String) throws(NodeConfigurationError) -> [ConfigReader]? {
        guard let value = try any(key) else { return nil }
        guard case .array(let items) = value else { throw NodeConfigurationError(key: name(key), problem: "must be an array of objects") }
        var readers: [ConfigReader] = []
        for (index, item) in items.enumerated() {
            readers.append(try ConfigReader(item, path: name("\(key)[\(index)]")))
        }
        return readers
    }

    mutating func object(_ key: String) throws(NodeConfigurationError) -> ConfigReader? {
        guard let value = try any(key) else { return nil }
        return try ConfigReader(value, path: name(key))
    }

    /// Marks `keys` as read without reading them; returns those present.
    mutating func skip(_ keys: [String]) -> [String] {
        keys.filter { key in
            seen.insert(key)
            return object[key] != nil
        }
    }

    /// Refuses keys that were never read.
    func finish() throws(NodeConfigurationError) {
        if let unknown = object.keys.sorted().first(where: { !seen.contains($0) }) {
            throw NodeConfigurationError(key: name(unknown), problem: "unknown key")
        }
    }
}

extension ResourceLimits {
    /// Limits from a config object, every key optional, unknown keys refused.
    init(_ reader: inout ConfigReader) throws(NodeConfigurationError) {
        self.init(memoryBytes: try reader.count("memory_bytes"), openFiles: try reader.count("open_files"),
                  processes: try reader.count("processes"), cpuMillicores: try reader.count("cpu_millicores"))
        try reader.finish()
    }

    /// Each limit by its JSON name, with the same limit of `maxima`.
    func each(against maxima: ResourceLimits) -> [(name: String, value: Int?, maximum: Int?)] {
        [("memory_bytes", memoryBytes, maxima.memoryBytes), ("open_files", openFiles, maxima.openFiles),
         ("processes", processes, maxima.processes), ("cpu_millicores", cpuMillicores, maxima.cpuMillicores)]
    }
}
