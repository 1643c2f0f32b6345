import NexAgentBus
import NexWorkloads
import FoundationEssentials
import NATSWire

/// How the node serves host services to functions: which services are on, and each one's
/// settings (`host_services.services.<name>` in the node's configuration file).
///
/// ```json
/// "host_services": {"services": {
///   "kv":          {"enabled": true, "config": {"bucket_name": "hs_${namespace}_${workload_name}_kv", "max_bytes": 524288}},
///   "objectstore": {"enabled": true, "config": {"bucket_name": "hs_${namespace}_${workload_name}_obj", "max_bytes": 524288}},
///   "messaging":   {"enabled": true, "config": {"request_timeout_ms": 5000, "denied_subjects": []}},
///   "http":        {"enabled": true, "config": {"timeout_ms": 2500, "max_response_bytes": 1048576, "allowed_hosts": [], "ca_file": null}}
/// }}
/// ```
public struct HostServicesConfiguration: Sendable, Equatable {
    /// The services this node knows.
    public static let knownServices = ["http", "kv", "messaging", "objectstore"]

    /// The services that answer; a request to any other known service gets 403.
    public var enabledServices: Set<String> = Set(knownServices)
    public var keyValue = KeyValueSettings()
    public var objectStore = ObjectStoreSettings()
    public var messaging = MessagingSettings()
    public var http = HTTPSettings()
    /// The most host-service calls one agent has served at once
    /// (`host_services.max_calls_in_flight_per_agent`); a call over it is answered 429 at once.
    public var maxCallsInFlightPerAgent = 64
    /// The most host-service calls the node serves at once, all agents together
    /// (`host_services.max_calls_in_flight`): many flooding functions are bounded too.
    public var maxCallsInFlight = 1024

    public init() {}

    /// `kv`: one bucket per workload.
    public struct KeyValueSettings: Sendable, Equatable {
        /// The bucket name, with `${namespace}` and `${workload_name}` replaced (any case) by
        /// the escaped names (``HostServiceBucketName``), so two workloads never share a bucket.
        public var bucketTemplate = "hs_${namespace}_${workload_name}_kv"
        /// The most bytes a workload's bucket holds (`max_bytes`).
        public var maxBytes: Int64 = 524_288
        /// Create the bucket on first use (`jit_provision`); when false it must already exist.
        public var jitProvision = true
        public init() {}
    }

    /// `objectstore`: one bucket per workload.
    public struct ObjectStoreSettings: Sendable, Equatable {
        public var bucketTemplate = "hs_${namespace}_${workload_name}_obj"
        public var maxBytes: Int64 = 524_288
        public var jitProvision = true
        public init() {}
    }

    /// `messaging`: publish and request on the workload's NATS connection.
    public struct MessagingSettings: Sendable, Equatable {
        /// How long `request` waits for a reply (`request_timeout_ms`).
        public var requestTimeout: Duration = .seconds(5)
        /// More subjects functions may not publish or request to (`denied_subjects`, NATS
        /// wildcards), on top of the reserved ones that are always refused: every subject whose
        /// first token starts with `$` and every reply inbox (`_INBOX…`).
        public var deniedSubjects: [String] = []
        public init() {}
    }

    /// `http`: outbound HTTP(S) requests.
    public struct HTTPSettings: Sendable, Equatable {
        /// The whole request, redirects and body included (`timeout_ms`).
        public var timeout: Duration = .milliseconds(2500)
        /// The largest response body accepted (`max_response_bytes`).
        public var maxResponseBytes = 1024 * 1024
        /// Hosts requests may go to (`allowed_hosts`: names or IP addresses, compared with the
        /// URL's host without case), whatever their addresses. Empty: any host whose addresses
        /// are all public (``HTTPAddressPolicy``: no loopback, private, link-local, metadata...).
        public var allowedHosts: [String] = []
        /// Redirects followed, each checked against ``allowedHosts`` (`max_redirects`).
        public var maxRedirects = 10
        /// PEM file of the certificate authorities https servers are verified against
        /// (`ca_file`, e.g. a company's internal CA); nil means the system trust store.
        public var caFile: String?
        public init() {}
    }

    /// Whether `service` is known and enabled.
    public func isEnabled(_ service: String) -> Bool { enabledServices.contains(service) }
}

extension HostServicesConfiguration {
    /// Reads `host_services.services`: an object of `name: {"enabled": bool, "config": {...}}`.
    ///
    /// A service left out keeps its default (enabled); `null` for a service means the default.
    /// Unknown service names, unknown config keys and bad values are refused with the key named
    /// (`host_services.services.http.config.timeout_ms`).
    public static func parse(services value: JSONValue?, path: String = "host_services.services")
        throws(NodeConfigurationError) -> HostServicesConfiguration
    {
        var configuration = HostServicesConfiguration()
        guard let value, value != .null else { return configuration }
        var table = try ConfigReader(value, path: path)
        for name in table.keys {
            guard knownServices.contains(name) else {
                throw NodeConfigurationError(
                    key: "\(path).\(name)",
                    problem: "unknown host service (\(knownServices.joined(separator: ", ")))")
            }
            guard var entry = try table.object(name) else { continue }
            if try entry.bool("enabled") ?? true {
                configuration.enabledServices.insert(name)
            } else {
                configuration.enabledServices.remove(name)
            }
            if var settings = try entry.object("config") {
                try configuration.read(service: name, from: &settings, path: "\(path).\(name).config")
                try settings.finish()
            }
            try entry.finish()
        }
        try table.finish()
        return configuration
    }

    private mutating func read(service: String, from settings: inout ConfigReader, path: String)
        throws(NodeConfigurationError)
    {
        switch service {
        case "kv":
            keyValue.bucketTemplate = try Self.template(&settings, "bucket_name", path: path) ?? keyValue.bucketTemplate
            keyValue.maxBytes = try Self.maxBytes(&settings, path: path) ?? keyValue.maxBytes
            keyValue.jitProvision = try settings.bool("jit_provision") ?? keyValue.jitProvision
        case "objectstore":
            objectStore.bucketTemplate = try Self.template(&settings, "bucket_name", path: path) ?? objectStore.bucketTemplate
            objectStore.maxBytes = try Self.maxBytes(&settings, path: path) ?? objectStore.maxBytes
            objectStore.jitProvision = try settings.bool("jit_provision") ?? objectStore.jitProvision
        case "messaging":
            if let milliseconds = try Self.positive(&settings, "request_timeout_ms", path: path) {
                messaging.requestTimeout = .milliseconds(milliseconds)
            }
            if let subjects = try settings.strings("denied_subjects") {
                for subject in subjects {
                    do { try NATSSubject.validateSubscribe(subject) } catch {
                        throw NodeConfigurationError(key: "\(path).denied_subjects", problem: "\(error)")
                    }
                }
                messaging.deniedSubjects = subjects
            }
        case "http":
            if let milliseconds = try Self.positive(&settings, "timeout_ms", path: path) {
                http.timeout = .milliseconds(milliseconds)
            }
            if let bytes = try Self.positive(&settings, "max_response_bytes", path: path) {
                http.maxResponseBytes = bytes
            }
            http.maxRedirects = try settings.count("max_redirects") ?? http.maxRedirects
            if let caFile = try settings.string("ca_file") {
                do {
                    _ = try TLSClientFactory(NATSTLSOptions(caFile: caFile))
                } catch {
                    throw NodeConfigurationError(key: "\(path).ca_file", problem: "\(error)")
                }
                http.caFile = caFile
            }
            if let hosts = try settings.strings("allowed_hosts") {
                http.allowedHosts = try hosts.map { host throws(NodeConfigurationError) in
                    // An IPv6 address may come with or without brackets.
                    let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
                    if HTTPHostResolver.literal(bare) != nil { return bare.lowercased() }
                    guard !host.isEmpty, !host.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace }) else {
                        throw NodeConfigurationError(
                            key: "\(path).allowed_hosts", problem: "'\(host)' is not a host name (no scheme, port or path)")
                    }
                    return host.lowercased()
                }
            }
        default:
            break
        }
    }

    private static func template(_ settings: inout ConfigReader, _ key: String, path: String)
        throws(NodeConfigurationError) -> String?
    {
        guard let template = try settings.string(key) else { return nil }
        if let problem = HostServiceBucketName.problem(with: template) {
            throw NodeConfigurationError(key: "\(path).\(key)", problem: "'\(template)' \(problem)")
        }
        return template
    }

    private static func maxBytes(_ settings: inout ConfigReader, path: String) throws(NodeConfigurationError) -> Int64? {
        guard let value = try settings.any("max_bytes") else { return nil }
        guard let number = value.intValue, number > 0 || number == -1 else {
            throw NodeConfigurationError(key: "\(path).max_bytes", problem: "must be a whole number > 0 (or -1: no limit)")
        }
        return number
    }

    private static func positive(_ settings: inout ConfigReader, _ key: String, path: String)
        throws(NodeConfigurationError) -> Int?
    {
        guard let value = try settings.any(key) else { return nil }
        guard let number = value.intValue, number > 0, number <= Int64(Int32.max) else {
            throw NodeConfigurationError(key: "\(path).\(key)", problem: "must be a whole number > 0")
        }
        return Int(number)
    }
}
