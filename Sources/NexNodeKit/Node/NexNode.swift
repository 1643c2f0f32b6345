import NexWorkloads
#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import NATSWire
import NexAgentBus
import NexControl
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization

/// A Nex node: serves the `$NEX` control API for this host on the control connection,
/// publishes its events, and stops gracefully.
///
/// Run it in a `ServiceGroup` (as `nex-node up` does) so SIGTERM/SIGINT trigger a graceful
/// stop: stop serving, publish `node_stopped`, drain the connection.
public final class NexNode: Service, NodeControlHandler, Sendable {
    public static let version = "0.1.0"

    public let configuration: NodeConfiguration
    public let identity: NodeIdentity
    private let clientOptions: NATSClientOptions
    private let logger: Logger
    private let notifier: SystemdNotifier?
    private let ownsProcess: Bool
    private let systemLog: NodeLogPublisher?
    /// With `otel_metrics`: the node's metrics and the registry `/metrics` is rendered from.
    private let metrics: (counters: NodeMetrics, registry: PrometheusCollectorRegistry)?
    private let startedAt = Date()
    private let lameDuckMode = Mutex(false)
    /// Lame duck with a delay: the node leaves, and its reschedulable services move now.
    private let leaving = Mutex(false)
    private let connection = Mutex<NATSClient?>(nil)
    private let manager = Mutex<WorkloadManager?>(nil)
    /// The nexus's shared curve key (`nexus_xkey_seed_file`), loaded when the node runs.
    private let nexusCurveKey = Mutex<XKeyPair?>(nil)
    /// A lame duck request with a delay: the node exits after it (see ``lameDuck(_:)``).
    private let exitRequests: AsyncStream<Duration>
    private let exitRequestsSink: AsyncStream<Duration>.Continuation

    public var nodeID: String { identity.nodeID }

    /// - Parameters:
    ///   - clientOptions: the control connection; the node makes it reconnect forever.
    ///   - ownsProcess: the node is the process (as `nex-node` is): it becomes a child
    ///     subreaper and ends every child it did not start itself (the escaped descendants of a
    ///     workload that killed its own agent). Leave it false when embedding a node in a
    ///     program that has children of its own.
    ///   - systemLog: where the node's log handler queues its lines for `$NEX.logs.system.<node>`
    ///     (`--logger nats`); the node sends them on its control connection while it runs.
    public init(configuration: NodeConfiguration, identity: NodeIdentity, clientOptions: NATSClientOptions,
                logger: Logger, notifier: SystemdNotifier? = SystemdNotifier(), ownsProcess: Bool = false,
                systemLog: NodeLogPublisher? = nil) {
        self.ownsProcess = ownsProcess
        self.systemLog = systemLog
        if configuration.metrics.enabled {
            let registry = PrometheusCollectorRegistry()
            metrics = (NodeMetrics(factory: PrometheusMetricsFactory(registry: registry)), registry)
        } else {
            metrics = nil
        }
        self.configuration = configuration
        self.identity = identity
        var options = clientOptions
        options.maxReconnectAttempts = -1
        options.name = options.name ?? "nex-node \(identity.nodeID)"
        self.clientOptions = options
        self.logger = logger
        self.notifier = notifier
        (exitRequests, exitRequestsSink) = AsyncStream.makeStream(of: Duration.self, bufferingPolicy: .bufferingNewest(1))
    }

    public var isLameDuck: Bool { lameDuckMode.withLock { $0 } }

    public func run() async throws {
        for ignored in configuration.ignoredKeys {
            logger.warning("\(ignored)")
        }
        if let path = configuration.nexusXKeySeedFile {
            var info = stat()
            if stat(path, &info) == 0, info.st_mode & 0o077 != 0 {
                throw NodeConfigurationError(
                    key: "nexus_xkey_seed_file",
                    problem: "\(path) may be read by group or others (mode \(String(info.st_mode & 0o777, radix: 8))): chmod 600 it")
            }
            do {
                let key = try NexKeyStore.readXKey(path)
                nexusCurveKey.withLock { $0 = key }
            } catch {
                throw NodeConfigurationError(key: "nexus_xkey_seed_file", problem: "\(error)")
            }
        }
        // One event loop for the node's connections and its agent bus: an invocation's trigger
        // message, its request to the agent, the reply and the function event cross no thread.
        let loop = clientOptions.eventLoopGroup.next()
        var controlOptions = clientOptions
        controlOptions.eventLoopGroup = loop
        let client = try NATSClient(options: controlOptions)
        try await client.connect()
        connection.withLock { $0 = client }
        logger.info("nex-node serving", metadata: [
            "node_id": "\(nodeID)", "server": "\(client.connectedServer ?? "")", "xkey": "\(identity.publicXKey)",
        ])
        if configuration.validIssuers.isEmpty {
            logger.warning("valid_issuers is empty: any account key may deploy workloads to this node; list the issuers you trust")
        }
        if configuration.allowUnverifiedHash {
            logger.warning(
                "allow_unverified_hash is on: this node runs artifacts whose deploy token does not pin their SHA-256 (Nex 0.2 clients send a placeholder); whoever can write an artifact's location chooses the code that runs. Such workloads are marked unverified in INFO; turn it off once every client sends real hashes.")
        }
        let workloads = try await startWorkloads(control: client, eventLoop: loop)
        let server = ControlServer(nodeID: nodeID, client: client, handler: self, logger: logger)
        // Serving the control API: shut down first (the node stops taking work), and when it
        // ends or fails the rest of the group is shut down gracefully.
        let serving = ClosureService { [self] in
            do {
                try await self.serve(server, client: client)
            } catch {
                self.logger.error("nex-node failed; stopping its workloads", metadata: ["error": "\(error)"])
                throw error
            }
            self.logger.info("nex-node stopping", metadata: ["node_id": "\(self.nodeID)"])
            self.notifier?.notify("STOPPING=1")
        }
        // The node's long-lived parts in one group (hummingbird's Application.run): a graceful
        // shutdown stops them in the reverse order: serving, the workloads, the agents, host
        // services, then the bus. The node's own bus link is closed after the bus (below), so it
        // is not reported as a lost link.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let systemLog {
            // First in, last out: the node's log lines are sent until the rest has stopped.
            let nodeID = self.nodeID
            services.append(.init(service: ClosureService {
                await withGracefulShutdownHandler {
                    await systemLog.run(client: client, nodeID: nodeID)
                } onGracefulShutdown: {
                    systemLog.close()
                }
            }, serviceName: "system log"))
        }
        services += [
            .init(service: workloads.bus, serviceName: "agent bus"),
            .init(service: workloads.hostServices, serviceName: "host services"),
            .init(service: workloads.supervisor, serviceName: "agent supervisor"),
            .init(service: workloads.manager, serviceName: "workload manager"),
        ]
        if let rescheduler = workloads.rescheduler { services.append(.init(service: rescheduler, serviceName: "rescheduler")) }
        if let metrics {
            let settings = configuration.metrics
            services.append(.init(service: MetricsServer(host: settings.address, port: settings.port, logger: logger) { [self] in
                metrics.counters.update(await self.metricsSnapshot(workloads))
                return metrics.registry.emitToBuffer()
            }, serviceName: "metrics"))
        }
        services.append(.init(service: serving, successTerminationBehavior: .gracefullyShutdownGroup,
                              failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "control API"))
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        do {
            try await group.run()
        } catch {
            await workloads.closeLinks()
            throw error
        }
        await workloads.closeLinks()
        await publishEvent(NexEventType.nodeStopped, NodeStoppedEvent(id: nodeID, graceful: true))
        try? await client.drain(timeout: .seconds(5))
    }

    /// What the node holds now, for its gauges.
    private func metricsSnapshot(_ workloads: WorkloadRuntime) async -> NodeMetricsSnapshot {
        let bus = await workloads.bus.statistics()
        return NodeMetricsSnapshot(
            lameDuck: isLameDuck, agents: await workloads.supervisor.agentCount, warmAgents: await workloads.supervisor.warmCount,
            busMessages: bus.messagesPublished, busBytes: bus.bytesPublished,
            workloads: await workloads.manager.metricsWorkloads())
    }

    /// Serves until a shutdown signal (returns) or a failure (throws).
    private func serve(_ server: ControlServer, client: NATSClient) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            group.addTask { try await self.heartbeats() }
            if let notifier, let interval = notifier.watchdogInterval {
                group.addTask {
                    while true {
                        notifier.notify("WATCHDOG=1")
                        try await Task.sleep(for: interval)
                    }
                }
            }
            try await client.flush()
            await publishEvent(NexEventType.nodeStarted, NodeStartedEvent(version: Self.version, id: nodeID, tags: tags))
            notifier?.notify("READY=1")
            group.addTask {
                // What this node ran before it stopped comes back, now that its agents' services run.
                await self.workloadManager?.restore()
                if !self.configuration.autostart.isEmpty {
                    // The node is the issuer of its autostart workloads: a key of this run only.
                    do {
                        await self.workloadManager?.autostart(self.configuration.autostart, issuer: try NKeyPair.generate(.account))
                    } catch {
                        self.logger.error("autostart: no issuer key", metadata: ["error": "\(error)"])
                    }
                }
                try await gracefulShutdown()
            }
            group.addTask {
                // Lame duck with a delay: the node exits once its workloads are done, or the delay is up.
                for await delay in self.exitRequests {
                    let deadline = ContinuousClock.now + delay
                    while ContinuousClock.now < deadline, await self.runningCount > 0 {
                        try await Task.sleep(for: .milliseconds(250))
                    }
                    let left = await self.runningCount
                    self.logger.info("lame duck: the node exits", metadata: ["workloads_left": "\(left)"])
                    return
                }
                try await gracefulShutdown()
            }
            // The first to end (a shutdown signal, or serving failing) ends the node.
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// The agent bus, the node's connection to it, the agent pool and the workload manager.
    private func startWorkloads(control: NATSClient, eventLoop: any EventLoop) async throws -> WorkloadRuntime {
        guard let agentPath = AgentExecutable.locate(configured: configuration.agentPath) else {
            throw NodeStartError(configuration.agentPath.map { "agent_path \($0) is not an executable file" }
                                 ?? "nex-agent was not found beside nex-node or on PATH")
        }
        let stateDirectory = configuration.stateDirectory ?? StateDirectory.defaultPath
        let cache = try artifactCache(stateDirectory: stateDirectory)  // a bad root stops the start before any agent
        let sandbox = try prepareSandbox()
        let bus = try AgentBus(eventLoop: eventLoop, logger: logger)
        // The workload plane on the bus's event loop: the node's in-process link to the bus and
        // the trigger connections, so an invocation crosses no thread and no socket inside the node.
        let workloadLoop = bus.eventLoop
        // Sandboxed agents get their bus connection made (a socket pair): no listener then,
        // so nothing on this host (a workload on the host network included) can dial the bus.
        if sandbox == nil { try await bus.start() }
        let link = try await bus.link()
        var settings = AgentSupervisor.Settings(
            agentExecutable: agentPath, stateDirectory: stateDirectory, poolSize: configuration.machinePoolSize,
            handshakeTimeout: .milliseconds(configuration.agentHandshakeTimeoutMilliseconds),
            pingTimeout: .milliseconds(configuration.agentPingTimeoutMilliseconds),
            logLevel: ProcessInfo.processInfo.environment["NEX_LOG_LEVEL"])
        settings.sandbox = sandbox
        let triggerCredentials = try configuration.directTriggers.map { direct in
            do {
                return try TriggerCredentials(direct, replyWindow: WorkloadManager.invocationTimeout)
            } catch {
                throw NodeStartError("\(error)")
            }
        }
        settings.socketChannels = triggerCredentials != nil
        // A workload can kill its own agent; what it left running is then re-parented to the
        // nearest subreaper. When the process is ours, be that subreaper and end those orphans.
        if ownsProcess {
            do {
                try DescendantProcesses.becomeSubreaper()
                settings.killsOrphans = true
            } catch {
                logger.warning("descendants of a workload whose agent dies may outlive it", metadata: ["error": "\(error)"])
            }
        }
        let supervisor = AgentSupervisor(
            settings: settings,
            bus: bus, connection: link, logger: logger)
        try await supervisor.start()
        let hostServicesConnection = try await connectHostServices(eventLoop: workloadLoop)
        if let triggerCredentials {
            do {
                try Self.checkAccount(of: hostServicesConnection.options.auth, is: triggerCredentials.issuingAccount)
            } catch {
                await hostServicesConnection.close()
                throw error
            }
        }
        let manager = try WorkloadManager(
            context: .init(nodeID: nodeID, configuration: configuration, identity: identity, control: control,
                           bus: link, hostServices: hostServicesConnection, isLameDuck: { [self] in self.isLameDuck },
                           nexusCurveKey: nexusCurveKey.withLock { $0 }, isLeaving: { [self] in self.leaving.withLock { $0 } },
                           metrics: metrics?.counters, triggerCredentials: triggerCredentials),
            supervisor: supervisor, cache: cache, logger: logger)
        try await manager.start()
        let hostServices = HostServicesServer(
            busConnection: link, configuration: configuration.hostServices.configuration,
            resolve: { agentID in await manager.hostServiceScope(agentID: agentID) }, logger: logger,
            metrics: metrics?.counters)
        try await hostServices.start()
        await manager.attach(hostServices)
        await manager.openStateBucket()
        let rescheduler = await makeRescheduler(manager: manager, control: control)
        self.manager.withLock { $0 = manager }
        logger.info("agent bus ready", metadata: [
            sandbox == nil ? "url" : "listener": "\(sandbox == nil ? bus.url : "none (socket pairs)")",
            "agent": "\(agentPath)", "pool": "\(configuration.machinePoolSize)"])
        return WorkloadRuntime(bus: bus, link: link, supervisor: supervisor, manager: manager, rescheduler: rescheduler,
                               hostServices: hostServices, hostServicesConnection: hostServicesConnection)
    }

    /// With a nexus key and a state bucket, the node keeps the nexus's reschedulable services
    /// running; without, it neither runs nor adopts them.
    private func makeRescheduler(manager: WorkloadManager, control: NATSClient) async -> Rescheduler? {
        guard let nexus = configuration.nexus, nexusCurveKey.withLock({ $0 }) != nil else { return nil }
        guard let store = await manager.stateStore else {
            logger.warning("nexus_xkey_seed_file is set but there is no state bucket: no reschedulable workloads")
            return nil
        }
        do {
            let liveness = try await NodeLiveness.open(stateBucket: configuration.stateBucket,
                                                       replicas: configuration.stateReplicas, control: control)
            let after = Duration.milliseconds(Int64(configuration.rescheduleAfterSeconds * 1000))
            logger.info("reschedulable services of the nexus are kept running", metadata: [
                "nexus": "\(nexus)", "reschedule_after_seconds": "\(configuration.rescheduleAfterSeconds)"])
            await manager.enableRescheduling()
            return Rescheduler(settings: .init(nodeID: nodeID, nexus: nexus, rescheduleAfter: after), identity: identity,
                               store: store, liveness: liveness, manager: manager, isLameDuck: { [self] in self.isLameDuck },
                               isLeaving: { [self] in self.leaving.withLock { $0 } }, logger: logger)
        } catch {
            logger.warning("no liveness bucket: no reschedulable workloads", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// The node's sandbox for its agents: nil with `no_sandbox` (warned), else one that works
    /// on this host, or the start fails naming what the host lacks.
    private func prepareSandbox() throws -> NodeSandbox? {
        guard !configuration.noSandbox else {
            logger.warning("no_sandbox: workloads run unsandboxed as the node's user and can reach each other and the node's files (tagged nex.unsafe=true)")
            return nil
        }
        let sandbox = try NodeSandbox.prepare()
        logger.info("workloads are sandboxed", metadata: [
            "uids": "\(sandbox.identities.uids)", "gids": "\(sandbox.identities.gids)",
            "id_mapping": "\(sandbox.idMapping == .direct ? "direct" : "newuidmap")",
            "cgroups": "\(sandbox.cgroups.map { "\($0.version)" } ?? "none")"])
        if let problem = sandbox.cgroupProblem {
            logger.warning("no cgroups for sandboxes: workload memory and process limits fall back to rlimits, CPU limits are refused (give the node a delegated cgroup: Delegate=yes)",
                           metadata: ["reason": "\(problem)"])
        }
        return sandbox
    }

    /// Whether agents and workloads run sandboxed (not `no_sandbox`).
    public var isSandboxed: Bool { !configuration.noSandbox }

    /// The artifact cache in the state directory, reading `file://` artifacts only from
    /// `allowed_file_roots`, none of which may hold the state directory (the node's keys).
    private func artifactCache(stateDirectory: String) throws -> ArtifactCache {
        let roots = try ArtifactFileRoots(configuration.allowedFileRoots)
        let cache = try ArtifactCache(stateDirectory: stateDirectory, fileRoots: roots)
        if let root = roots.root(holding: stateDirectory) {
            throw NodeConfigurationError(
                key: "allowed_file_roots",
                problem: "'\(root)' holds the node's state directory \(stateDirectory) (its keys): name a directory of artifacts only")
        }
        if let root = roots.root(inside: stateDirectory) {
            throw NodeConfigurationError(
                key: "allowed_file_roots",
                problem: "'\(root)' lies inside the node's state directory \(stateDirectory): name a directory of artifacts only")
        }
        if !roots.directories.isEmpty {
            logger.info("file:// artifacts allowed", metadata: ["roots": "\(roots.directories.joined(separator: ", "))"])
        }
        return cache
    }

    /// The node's own host-services connection, never the control connection itself: to
    /// `host_services.nats_url` with its credentials when set, else a second connection to the
    /// control system (same servers and credentials), with a warning that the control and
    /// workload planes then share a server.
    private func connectHostServices(eventLoop: any EventLoop) async throws -> NATSClient {
        let settings = configuration.hostServices
        var options: NATSClientOptions
        if let url = settings.natsURL, !url.isEmpty {
            options = NATSClientOptions(servers: [url])
            if let jwt = settings.natsUserJWT, let seed = settings.natsUserSeed {
                options.auth = .jwt(jwt, seed: seed)
            } else if let seed = settings.natsUserSeed {
                options.auth = .nkey(seed: seed)
            }
            options.tls = settings.tls
        } else {
            options = clientOptions
            logger.warning("""
                host_services.nats_url is not set: host services connect to the control system's server with the \
                control credentials, so the control and workload planes share a server (set host_services.nats_url \
                and credentials of another account to separate them)
                """)
        }
        options.name = "nex-node host services \(nodeID)"
        options.eventLoopGroup = eventLoop
        options.maxReconnectAttempts = -1
        options.logger = logger
        let client = try NATSClient(options: options)
        try await client.connect()
        return client
    }

    /// The agents' JWTs log in to the account of `direct_triggers`: the node's workload-plane
    /// connection must be a user of that same account, or the agents would serve in another one
    /// while the node lets go of the subjects.
    static func checkAccount(of auth: NATSAuth, is account: String) throws(NodeStartError) {
        let jwt: NATSJWT
        do {
            switch auth {
            case .jwt(let token, _): jwt = try NATSJWT(token: token)
            case .credentialsFile(let path): jwt = try NATSCredentials(contentsOf: path).decodedJWT()
            default:
                throw NodeStartError("direct_triggers needs the host-services connection to log in with a user JWT of account \(account)")
            }
        } catch let error as NodeStartError {
            throw error
        } catch {
            throw NodeStartError("direct_triggers: cannot read the host-services connection's user JWT: \(error)")
        }
        let own = jwt.claims.nats["issuer_account"]?.stringValue ?? jwt.claims.issuer
        guard own == account else {
            throw NodeStartError("direct_triggers signs for account \(account), but the host-services connection is a user of account \(own)")
        }
    }

    private var workloadManager: WorkloadManager? { manager.withLock { $0 } }

    private var runningCount: Int {
        get async { await workloadManager?.count ?? 0 }
    }

    private func heartbeats() async throws {
        let interval = Duration.milliseconds(Int64(configuration.heartbeatIntervalSeconds * 1000))
        while true {
            try await Task.sleep(for: interval)
            await publishEvent(NexEventType.heartbeat, HeartbeatEvent(
                version: Self.version, nodeID: nodeID, nexus: configuration.nexus, uptime: uptime, tags: tags,
                runningMachines: await runningCount))
        }
    }

    /// Publishes a CloudEvent on `$NEX.events.system.<type>`; failures are logged, never fatal.
    func publishEvent<T: Codable & Sendable>(_ type: NexEventType, _ data: T) async {
        guard let client = connection.withLock({ $0 }) else { return }
        let event = NexEvent(source: nodeID, type: type, data: data)
        do {
            let body = try JSONEncoder().encode(event)
            try await client.publish(Array(body), to: NexSubject.event(namespace: NexSubject.systemNamespace, type: type))
        } catch {
            logger.warning("event not published", metadata: ["type": "\(type)", "error": "\(error)"])
        }
    }

    // MARK: What the node says about itself

    public var uptime: String { Uptime.format(seconds: Int(Date().timeIntervalSince(startedAt))) }

    /// Configured tags plus the automatic `nex.*` ones.
    public var tags: [String: String] {
        var tags = configuration.tags
        tags["nex.os"] = "linux"
        tags["nex.arch"] = Self.architecture
        tags["nex.cpucount"] = String(ProcessInfo.processInfo.activeProcessorCount)
        tags["nex.lameduck"] = isLameDuck ? "true" : "false"
        if !isSandboxed { tags["nex.unsafe"] = "true" }  // agents are plain processes of the node's user
        if let nexus = configuration.nexus { tags["nex.nexus"] = nexus }
        if tags["node_name"] == nil { tags["node_name"] = ProcessInfo.processInfo.hostName }
        return tags
    }

    /// Go's names, as Nex reports them.
    static var architecture: String {
        #if arch(x86_64)
        return "amd64"
        #elseif arch(arm64)
        return "arm64"
        #else
        return "unknown"
        #endif
    }

    // MARK: NodeControlHandler

    public func ping() async -> PingResponse {
        PingResponse(nodeID: nodeID, nexus: configuration.nexus, version: Self.version, uptime: uptime,
                     targetXKey: identity.publicXKey,
                     tags: tags, runningMachines: await runningCount, sandboxed: isSandboxed, nexusXKey: nexusXKey)
    }

    /// Silent (nil) when nothing matches, as Nex does.
    public func workloadPing(namespace: String, workload: String?) async -> WorkloadPingResponse? {
        guard let found = await workloadManager?.running(namespace: namespace, matching: workload), !found.isEmpty
        else { return nil }
        return WorkloadPingResponse(nodeID: nodeID, targetXKey: identity.publicXKey, version: Self.version, tags: tags,
                                    uptime: uptime, runningMachines: found)
    }

    /// Matches Nex 0.2's auction: every criterion given must hold. A node in lame duck mode
    /// takes no new work and does not bid.
    public func auction(_ request: AuctionRequest) async -> PingResponse? {
        guard !isLameDuck else { return nil }
        let tags = self.tags
        if let arch = request.arch, arch.lowercased() != Self.architecture { return nil }
        if let os = request.os, os.lowercased() != "linux" { return nil }
        if let sandboxed = request.sandboxed, sandboxed != isSandboxed { return nil }
        for (key, value) in request.tags ?? [:] where tags[key]?.lowercased() != value.lowercased() { return nil }
        for name in request.workloadTypes ?? [] {
            guard let type = WorkloadType(name: name), configuration.workloadTypes.contains(type) else { return nil }
        }
        return await ping()
    }

    public func info(namespace: String) async throws -> InfoResponse {
        InfoResponse(version: Self.version, uptime: uptime, publicXKey: identity.publicXKey, tags: tags,
                     memory: Self.memory(), machines: await workloadManager?.machines(namespace: namespace) ?? [],
                     supportedWorkloadTypes: configuration.workloadTypes.map(\.rawValue), sandboxed: isSandboxed,
                     nexusXKey: nexusXKey)
    }

    public func deploy(namespace: String, request: DeployRequest) async throws -> RunResponse {
        if isLameDuck { throw NexControlError.badRequest("node \(nodeID) is in lame duck mode and accepts no new workloads") }
        guard let manager = workloadManager else { throw NexControlError.badRequest("node \(nodeID) is starting") }
        return try await manager.deploy(namespace: namespace, request: request)
    }

    public func stop(namespace: String, request: StopRequest) async throws -> StopResponse {
        guard let manager = workloadManager else { throw NexControlError.badRequest("no such workload: \(request.workloadID)") }
        return try await manager.stop(namespace: namespace, request: request)
    }

    /// The nexus's public xkey, when the node has the nexus key.
    public var nexusXKey: String? { nexusCurveKey.withLock { $0?.publicKey } }

    /// Enters lame duck mode: no new workloads, no bids, no restarts. With a delay, its
    /// reschedulable services move to other nodes of its nexus at once (they see it leaving),
    /// and the node exits once it runs nothing, or when the delay is up.
    public func lameDuck(_ request: LameDuckRequest) async throws -> LameDuckResponse {
        let delay = try request.parsedDelay()
        let entered = lameDuckMode.withLock { flag -> Bool in
            defer { flag = true }
            return !flag
        }
        if entered {
            logger.info("nex-node entered lame duck mode", metadata: ["node_id": "\(nodeID)"])
            await publishEvent(NexEventType.nodeEnteredLameDuck, LameDuckEnteredEvent(version: Self.version, id: nodeID))
        }
        guard let delay else { return LameDuckResponse(nodeID: nodeID, success: true) }
        leaving.withLock { $0 = true }
        exitRequestsSink.yield(delay)
        return LameDuckResponse(nodeID: nodeID, success: true,
                                message: "exits when its workloads are done, or in \(GoDuration.format(delay))")
    }

    /// MemTotal, MemFree, MemAvailable from /proc/meminfo, in kB.
    static func memory() -> InfoResponse.Memory? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        var values: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " })
            if parts.count >= 2, let value = Int(parts[1]) { values[String(parts[0])] = value }
        }
        guard let total = values["MemTotal"], let free = values["MemFree"], let available = values["MemAvailable"]
        else { return nil }
        return InfoResponse.Memory(total: total, free: free, available: available)
    }
}

/// The workload side of a running node: services run (and stopped in order) by the node's
/// `ServiceGroup`, and the connections closed after them.
struct WorkloadRuntime: Sendable {
    let bus: AgentBus
    let link: BusLink
    let supervisor: AgentSupervisor
    let manager: WorkloadManager
    let rescheduler: Rescheduler?
    let hostServices: HostServicesServer
    let hostServicesConnection: NATSClient

    /// After the services: the host-services connection and the node's bus link.
    func closeLinks() async {
        await hostServicesConnection.close()
        await link.close()
    }
}

/// A node cannot start its workload side, or cannot go on (it lost its agent bus).
public struct NodeStartError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
