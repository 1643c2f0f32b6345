import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import NATSWire
import NexCLISupport
import NexControl
import NexNodeKit
import ServiceLifecycle
import NexTelemetry
import Tracing

@main
struct NexNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nex-node",
        abstract: "Runs a Nex node: turns this host into a place where workloads run under NATS control.",
        version: NexNode.version,
        subcommands: [Up.self, Preflight.self]
    )

    /// Connection options (and `--config`, `--state-dir`) may stand before the subcommand too.
    static func main() async {
        await mainMovingConnectionOptions(alsoTakingValues: ["--config", "--state-dir"])
    }
}

/// Where the node connects and keeps its state; shared by `up` and `preflight`.
struct NodeOptions: ParsableArguments {
    @OptionGroup var connection: ConnectionOptions

    @Option(help: "JSON configuration file (keys in docs/configuration.md).")
    var config: String?

    @Option(name: .customLong("state-dir"), help: "Directory for the node identity and caches.")
    var stateDir: String?

    @Flag(help: "Start a private nats-server on loopback (store in the state dir) when no server is given.")
    var dev = false

    func loadConfiguration() throws -> NodeConfiguration {
        var configuration = try config.map { path throws in try NodeConfiguration(contentsOf: path) } ?? NodeConfiguration()
        configuration.control = configuration.control.overriding(connection.settings)
        if let stateDir { configuration.stateDirectory = stateDir }
        return configuration
    }

    /// `--dev` with no server configured anywhere (flags, config, context, $NATS_URL).
    func wantsDevServer(_ configuration: NodeConfiguration) -> Bool {
        let environment = ProcessInfo.processInfo.environment
        return dev && configuration.control.servers.isEmpty && configuration.control.context == nil
            && (environment["NATS_URL"] ?? "").isEmpty && (environment["NATS_CONTEXT"] ?? "").isEmpty
    }
}

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start the node and serve the $NEX control API until SIGTERM/SIGINT.")

    @OptionGroup var options: NodeOptions

    @Option(name: .customLong("tag"), help: "A tag KEY=VALUE (repeatable); added to the config's tags.")
    var tags: [String] = []

    @Option(help: "Seconds between heartbeat events (default 30).")
    var heartbeat: Double?

    @Option(name: .customLong("allow-file-root"),
            help: "A directory file:// artifacts may be read from (repeatable); added to the config's allowed_file_roots.")
    var fileRoots: [String] = []

    @Flag(help: "Serve Prometheus metrics at http://127.0.0.1:<port>/metrics (config: otel_metrics, metrics_address).")
    var metrics = false

    @Option(name: [.customLong("metrics-port"), .customLong("metrics_port")],
            help: "The metrics port (default 8085, Nex 0.2's; 0 picks a free one and the node logs it).")
    var metricsPort: Int?

    @Flag(help: "Send traces over OTLP/HTTP (config: otel_traces; endpoint: --otlp-endpoint, otlp_exporter_url).")
    var traces = false

    @Option(name: [.customLong("otlp-endpoint"), .customLong("otlp_exporter_url")],
            help: "The OTLP/HTTP collector's base URL (default $OTEL_EXPORTER_OTLP_ENDPOINT, else http://127.0.0.1:4318).")
    var otlpEndpoint: String?

    @Option(name: .customLong("log-format"), help: "How log lines look on stderr: text or json.")
    var logFormat: NodeLogFormat = .text

    @Option(name: .customLong("logger"),
            help: "std: log to stderr; nats: also publish the node's log lines on $NEX.logs.system.<node> (Nex 0.2's --logger).")
    var loggerKind: LoggerKind = .std

    @Option(name: .customLong("loglevel"),
            help: "trace, debug, info, notice, warning, error or critical (default: $NEX_LOG_LEVEL, else info).")
    var logLevel: Logger.Level?

    enum LoggerKind: String, ExpressibleByArgument, CaseIterable {
        case std, nats
    }

    func run() async throws {
        let level = logLevel ?? ProcessInfo.processInfo.environment["NEX_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let systemLog = loggerKind == .nats ? NodeLogPublisher() : nil
        let format = logFormat
        LoggingSystem.bootstrap { label in
            NodeLogHandler(label: label, format: format, level: level, publisher: systemLog)
        }
        let logger = Logger(label: "nex-node")
        var configuration: NodeConfiguration
        do {
            configuration = try options.loadConfiguration()
            for tag in tags {
                let parts = tag.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, !parts[0].isEmpty else {
                    throw NodeConfigurationError(key: "--tag", problem: "expected KEY=VALUE, got '\(tag)'")
                }
                configuration.tags[String(parts[0])] = String(parts[1])
            }
            if let heartbeat { configuration.heartbeatIntervalSeconds = heartbeat }
            if metrics { configuration.metrics.enabled = true }
            if let metricsPort { configuration.metrics.port = metricsPort }
            if traces { configuration.traces.enabled = true }
            if let otlpEndpoint {
                configuration.traces.endpoint = otlpEndpoint
            } else if configuration.traces.enabled, configuration.traces.endpoint == NodeConfiguration.TracesSettings().endpoint,
                      let endpoint = ProcessInfo.processInfo.environment["OTEL_EXPORTER_OTLP_ENDPOINT"], !endpoint.isEmpty {
                // The OpenTelemetry variable, read only when traces are on and the config names no other URL.
                configuration.traces.endpoint = endpoint
            }
            configuration.allowedFileRoots += fileRoots
            try configuration.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        let stateDirectory = configuration.stateDirectory ?? StateDirectory.defaultPath
        let identity = try NodeIdentity.loadOrCreate(in: stateDirectory)

        var devServer: DevNATSServer?
        if options.wantsDevServer(configuration) {
            let server = try await DevNATSServer(stateDirectory: stateDirectory)
            logger.info("dev nats-server started", metadata: ["url": "\(server.url)", "log": "\(server.logPath)"])
            configuration.control.servers = [server.url]
            if configuration.hostServices.natsURL?.isEmpty ?? true {
                // Host services in the dev server's workload account: the two planes apart.
                configuration.hostServices.natsURL = server.workloadURL
                configuration.hostServices.natsUserJWT = nil
                configuration.hostServices.natsUserSeed = nil
            }
            devServer = server
        }
        defer { devServer?.stop() }

        var clientOptions = try configuration.control.clientOptions()
        clientOptions.logger = logger
        let node = NexNode(configuration: configuration, identity: identity, clientOptions: clientOptions, logger: logger,
                           ownsProcess: true, systemLog: systemLog)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if configuration.traces.enabled {
            // First, so it stops last: the node's last spans still leave.
            let exporter = OTLPExporter(endpoint: try OTLPExporter.Endpoint(url: configuration.traces.endpoint),
                                        serviceName: "nex-node", resource: ["nex.node_id": identity.nodeID], logger: logger)
            InstrumentationSystem.bootstrap(OTLPTracer(exporter: exporter))
            services.append(.init(service: exporter))
            logger.info("traces exported", metadata: ["endpoint": "\(exporter.endpoint)"])
        }
        // The node returns by itself when it leaves in lame duck mode: the process ends, exit 0.
        services.append(.init(service: node, successTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}

struct Preflight: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check what the node needs, with a fix for each failure.")

    @OptionGroup var options: NodeOptions

    @Flag(name: .customLong("init"), help: """
        As root: make what the node needs where it is missing: the --node-user system user, its state \
        directory (0700), a default config at --config (default /etc/nex/config.json; never overwritten), \
        a subordinate uid and gid range for its sandboxes, and a delegated cgroup; then check.
        """)
    var initialize = false

    @Flag(help: "Only report (the default): nats-server and its version, nex-agent, JavaScriptCore, cgroups, user namespaces, seccomp, the state directory.")
    var check = false

    @Option(help: "The user the node runs as, for --init.")
    var nodeUser = "nex"

    func run() async throws {
        var options = self.options
        if initialize {
            guard !check else { throw ValidationError("--init changes the host and --check only reports: choose one") }
            guard getuid() == 0 else { throw ValidationError("--init makes a user, directories and cgroups: run it as root") }
            let configPath = options.config ?? "/etc/nex/config.json"
            // The state directory the node will use: --state-dir, else the config's, else the default.
            let configured = FileManager.default.fileExists(atPath: configPath)
                ? (try? NodeConfiguration(contentsOf: configPath))?.stateDirectory : nil
            let stateDirectory = options.stateDir ?? configured ?? StateDirectory.defaultPath
            var failed = false
            for step in NodeInitialization(user: nodeUser, stateDirectory: stateDirectory, configPath: configPath).run() {
                print("\(step.passed ? "ok  " : "FAIL") init: \(step.text)")
                failed = failed || !step.passed
            }
            if failed { throw ExitCode.failure }
            options.config = configPath
            options.stateDir = stateDirectory
        }
        let configuration: NodeConfiguration
        do {
            configuration = try options.loadConfiguration()
        } catch {
            throw ValidationError("\(error)")
        }
        let checks = await NexNodeKit.Preflight.run(
            control: configuration.control,
            stateDirectory: configuration.stateDirectory ?? StateDirectory.defaultPath,
            dev: options.wantsDevServer(configuration), agentPath: configuration.agentPath,
            sandboxed: !configuration.noSandbox)
        for check in checks {
            print("\(check.passed ? "ok  " : "FAIL") \(check.name): \(check.detail)")
            if let fix = check.fix, !check.passed { print("     fix: \(fix)") }
        }
        if checks.contains(where: { !$0.passed }) { throw ExitCode.failure }
    }
}

extension NodeLogFormat: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
