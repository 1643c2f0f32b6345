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
import ServiceLifecycle
import Tracing
import Synchronization

/// Deploys, watches, restarts and stops the node's workloads, each in an agent from the
/// ``AgentSupervisor``.
///
/// DEPLOY is checked in Nex 0.2's order with our fixes (the JWT's `hash` claim is compared
/// with the artifact; every refusal names what was wrong). Agent output becomes log records
/// on `$NEX.logs.<ns>.<node>.<workload_name>.<workload_id>`, agent events are republished on
/// `$NEX.events.<ns>.<type>`, and essential services are restarted with ``RestartBackoff``.
///
/// A `Service`: ``start()`` subscribes; ``run()`` forwards logs and events, watches agents and
/// runs restart timers (each a child task) until a graceful shutdown, then stops every
/// workload. Lifecycle decisions are ``WorkloadStateMachine``'s; the actor carries them out.
public actor WorkloadManager: Service {
    public struct Context: Sendable {
        public var nodeID: String
        public var configuration: NodeConfiguration
        public var identity: NodeIdentity
        /// The control connection: artifacts, events and logs go through it.
        public var control: NATSClient
        /// The node's own, in-process connection to the agent bus.
        public var bus: BusLink
        /// Host services and triggers use this unless a deploy brings its own: the node's
        /// host-services connection (the workload plane), never the control connection.
        public var hostServices: NATSClient
        public var isLameDuck: @Sendable () -> Bool
        /// The curve key the nodes of this node's nexus share (`nexus_xkey_seed_file`): it
        /// opens the environments of reschedulable workloads. Nil: none are accepted.
        public var nexusCurveKey: XKeyPair?
        /// Leaving (lame duck with a delay): a reschedulable service that ends now stays
        /// recorded, for another node of the nexus to take over.
        public var isLeaving: @Sendable () -> Bool = { false }
        /// Where deploys, restarts and function invocations are counted; nil: not counted.
        public var metrics: NodeMetrics?
        /// Signs the JWTs of agents that serve their function's triggers (`direct_triggers`);
        /// nil: the node relays every invocation.
        public var triggerCredentials: TriggerCredentials?

        /// The bus's event loop: a workload's own connections run there too, so an invocation
        /// crosses no thread inside the node.
        var workloadLoop: any EventLoop { bus.eventLoop }

        public init(nodeID: String, configuration: NodeConfiguration, identity: NodeIdentity, control: NATSClient,
                    bus: BusLink, hostServices: NATSClient, isLameDuck: @escaping @Sendable () -> Bool,
                    nexusCurveKey: XKeyPair? = nil, isLeaving: @escaping @Sendable () -> Bool = { false },
                    metrics: NodeMetrics? = nil, triggerCredentials: TriggerCredentials? = nil) {
            self.nodeID = nodeID; self.configuration = configuration; self.identity = identity
            self.control = control; self.bus = bus; self.hostServices = hostServices
            self.isLameDuck = isLameDuck; self.nexusCurveKey = nexusCurveKey; self.isLeaving = isLeaving
            self.metrics = metrics; self.triggerCredentials = triggerCredentials
        }
    }

    private let context: Context
    private let supervisor: AgentSupervisor
    private let cache: ArtifactCache
    private let logger: Logger
    /// Every workload's lifecycle and the deploy reservations: the manager feeds it events and
    /// carries out what it returns.
    private var machine: WorkloadStateMachine
    /// The data and resources of each workload the machine knows (from commit to clean-up).
    private var records: [String: WorkloadRecord] = [:]
    /// agent id → workload id, shared with the log forwarder (which runs outside the actor).
    private let routes = LogRoutes()
    /// Routes of retired agents, removed 30 s later (lines may still be queued behind the end).
    private var retiredRoutes: [(agentID: String, until: ContinuousClock.Instant)] = []
    private var subscriptions: (logs: BusLinkSubscription, events: BusLinkSubscription,
                                invocations: BusLinkSubscription)?
    /// Essential restarts to time: ``run()`` waits out each backoff in a child task (a timer
    /// that fires after a stop finds the machine uninterested).
    private let restartRequests: AsyncStream<(id: String, delay: Duration)>
    private let restartRequestsSink: AsyncStream<(id: String, delay: Duration)>.Continuation
    /// Told when a workload's own host-services connection closes (it caches bucket handles).
    private var hostServicesServer: HostServicesServer?
    /// Deploy tokens accepted (persisted): each `jti` starts one workload.
    private var ledger: DeployTokenLedger
    /// Where the workloads it runs are recorded, to come back after a restart; nil when the
    /// control plane has no JetStream (then they do not).
    private(set) var stateStore: WorkloadStateStore?
    /// Set by ``stopAll()``: workloads that end now end with the node and stay recorded.
    private var nodeStopping = false
    /// Whether the node keeps the nexus's reschedulable services (its rescheduler runs):
    /// without, it accepts none.
    private var reschedules = false
    /// Ids of recorded workloads being deployed again (restored or adopted), claimed before any
    /// await: one id never runs twice here.
    private var redeploying: Set<String> = []

    public init(context: Context, supervisor: AgentSupervisor, cache: ArtifactCache, logger: Logger) throws {
        self.context = context
        self.supervisor = supervisor
        self.cache = cache
        self.logger = logger
        self.ledger = try DeployTokenLedger(stateDirectory: context.configuration.stateDirectory ?? StateDirectory.defaultPath)
        let limits = context.configuration.nodeLimits
        self.machine = WorkloadStateMachine(limits: .init(
            maxWorkloads: limits.maxWorkloads, maxConcurrentDeploys: limits.maxConcurrentDeploys,
            maxTotalBytes: limits.maxTotalBytes))
        (restartRequests, restartRequestsSink) = AsyncStream.makeStream(of: (id: String, delay: Duration).self)
    }

    private var configuration: NodeConfiguration { context.configuration }
    private var nodeID: String { context.nodeID }

    /// Subscribes to agent logs and events (confirmed by the bus before this returns).
    public func start() async throws {
        let logs = try await context.bus.subscribe(to: AgentBusSubject.toHost("*", AgentVerb.logs))
        let events = try await context.bus.subscribe(to: AgentBusSubject.toHost("*", AgentVerb.events) + ".*")
        let invocations = try await context.bus.subscribe(to: AgentBusSubject.toHost("*", AgentVerb.invocations))
        subscriptions = (logs, events, invocations)
    }

    /// Forwards agent logs and events, watches agents and runs restart timers, each in a child
    /// task, until a graceful shutdown (or cancellation); then stops every workload
    /// (``stopAll()``). Nothing it started outlives it.
    public func run() async throws {
        guard let (logs, events, invocations) = subscriptions else { return await stopAll() }
        let forwarder = LogForwarder(nodeID: nodeID, routes: routes, control: context.control, logger: logger,
                                     rate: LogForwarder.nodeRate(for: context.configuration.logRateLimit))
        let notices = supervisor.noticeStream
        let restarts = restartRequests
        await withDiscardingTaskGroup { group in
            group.addTask { await forwarder.run(logs) }
            group.addTask { for await message in events { await self.handleAgentEvent(message) } }
            group.addTask { for await message in invocations { await self.handleInvocations(message) } }
            group.addTask {
                for await notice in notices {
                    if case .exited(let agentID, let status) = notice { await self.agentExited(agentID, status: status) }
                }
            }
            group.addTask {
                await withDiscardingTaskGroup { timers in
                    for await restart in restarts {
                        timers.addTask {
                            guard (try? await Task.sleep(for: restart.delay)) != nil else { return }
                            await self.restartTimerFired(restart.id)
                        }
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await stopAll()
    }

    /// Workloads deployed and not yet stopped.
    public var count: Int { machine.liveCount }

    // MARK: Deploy

    /// What a deploy brings once its request is checked.
    private struct CheckedDeploy {
        let type: WorkloadType
        let triggers: [String]
        let environment: [String: String]
        let claims: WorkloadClaims
        /// Nil when the node allows unverified hashes and the token's is not a SHA-256 digest.
        let claimedHash: String?
        let token: String
        let location: ArtifactLocation
    }

    public func deploy(namespace: String, request: DeployRequest) async throws -> RunResponse {
        do {
            let response = try await deploy(namespace: namespace, request: request, source: .request)
            context.metrics?.deployed(result: "started")
            return response
        } catch {
            context.metrics?.deployed(result: error is NexControlError ? "refused" : "failed")
            throw error
        }
    }

    /// Where a deploy comes from.
    enum DeploySource {
        /// A `$NEX.DEPLOY` request.
        case request
        /// This node's record in the state bucket, of before it restarted: the same id, its
        /// token (in this node's ledger) checked as of when it was accepted.
        case own(WorkloadStateStore.Record)
        /// Another node's record of the nexus (that node was lost, or left): the same id, its
        /// token checked as of when it was accepted, and entered in this node's ledger now, so
        /// it cannot be replayed here.
        case adopted(WorkloadStateStore.Record)
        /// The node's `autostart` config, signed by the node's own start-time issuer: not
        /// recorded (the config brings it back).
        case autostart(issuer: String)

        var record: WorkloadStateStore.Record? {
            switch self {
            case .own(let record), .adopted(let record): record
            case .request, .autostart: nil
            }
        }
    }

    /// Deploys the node's `autostart` workloads; each failure is logged and the others go on.
    func autostart(_ workloads: [AutostartWorkload], issuer: NKeyPair) async {
        let sender: XKeyPair
        do { sender = try XKeyPair.generate() } catch {
            return logger.error("autostart: no sender key", metadata: ["error": "\(error)"])
        }
        for workload in workloads {
            do {
                let location = try ArtifactLocation(validating: workload.location)
                let hash = try await NexClient(connection: context.control)
                    .artifactHash(of: location, jsDomain: workload.jsDomain)
                var submission = try WorkloadSubmission(
                    name: workload.name, type: workload.type, location: location, artifactHash: hash,
                    environment: workload.environment, argv: workload.argv, description: workload.description,
                    essential: workload.essential, triggerSubjects: workload.triggerSubjects, jsDomain: workload.jsDomain)
                submission.limits = workload.limits
                let request = try submission.deployRequest(issuer: issuer, sender: sender, targetNode: nodeID,
                                                           targetXKey: context.identity.publicXKey)
                let run = try await deploy(namespace: workload.namespace, request: request,
                                           source: .autostart(issuer: issuer.publicKey))
                logger.info("autostart: workload deployed", metadata: ["workload": "\(workload.name)", "id": "\(run.id)"])
            } catch {
                logger.error("autostart: workload not deployed", metadata: [
                    "workload": "\(workload.name)", "namespace": "\(workload.namespace)", "error": "\(error)"])
            }
        }
    }

    private func deploy(namespace: String, request: DeployRequest, source: DeploySource) async throws -> RunResponse {
        // Every way in (a request, autostart, a restored or rescheduled record) passes here.
        if namespace == NexSubject.systemNamespace {
            throw NexControlError.badRequest(
                "namespace '\(namespace)' is the node's own (its events and log lines): deploy workloads into another namespace")
        }
        let started = ContinuousClock.now
        let restoring = source.record
        if let id = restoring?.id {
            guard records[id] == nil, machine.workload(id)?.isLive != true, redeploying.insert(id).inserted else {
                throw NexControlError.badRequest("workload \(id) already runs on node \(nodeID)")
            }
        }
        defer { if let id = restoring?.id { redeploying.remove(id) } }
        let acceptedAt = restoring.map { Date(timeIntervalSince1970: TimeInterval($0.acceptedAt)) } ?? Date()
        // Reserve a workload slot and a deploy slot before any await; every failure below
        // gives them back.
        let reserved = machine.deployRequested(nodeID: nodeID, lameDuck: context.isLameDuck())
        guard case .fetchArtifact(let reservation) = reserved else { throw Self.refusal(reserved) }
        let checked: CheckedDeploy
        let checking = Self.step("deploy: check")
        defer { checking.end() }
        do {
            let issuers = if case .autostart(let issuer) = source { [issuer] } else { configuration.validIssuers }
            checked = try check(request, at: acceptedAt, restoring: restoring != nil, validIssuers: issuers)
            if restoring == nil {
                guard machine.claimToken(checked.token, for: reservation) else { throw Self.tokenUsed(checked.claims) }
            }
        } catch {
            machine.reservationAbandoned(reservation)
            checking.recordError(error)
            throw error
        }
        checking.end()
        let claims = checked.claims, type = checked.type
        let artifact: CachedArtifact
        let fetching = Self.step("deploy: fetch artifact")
        defer { fetching.end() }
        do throws(ArtifactError) {
            artifact = try await cache.fetch(checked.location, expectedSHA256: checked.claimedHash,
                                             maxBytes: configuration.nodeLimits.maxWorkloadBytes,
                                             jetStreamDomain: request.jsDomain, client: context.control)
        } catch {
            machine.reservationAbandoned(reservation)
            logger.info("artifact refused", metadata: ["workload": "\(claims.name)", "namespace": "\(namespace)",
                                                       "error": "\(error.operatorDetail)"])
            fetching.recordError(error)
            throw NexControlError.badRequest("\(error)")
        }
        fetching.attributes["nex.artifact.cached"] = artifact.fromCache
        fetching.attributes["nex.artifact.bytes"] = artifact.size
        fetching.end()
        let sized = machine.artifactFetched(reservation, bytes: artifact.size, workloadName: claims.name)
        guard case .createWorkload = sized else { throw Self.refusal(sized) }

        let id = restoring?.id ?? RandomID.make(length: 20)
        let resource = ResourceLimits(
            memoryBytes: request.limits?.memoryBytes ?? configuration.workloadLimits.memoryBytes,
            openFiles: request.limits?.openFiles ?? configuration.workloadLimits.openFiles,
            processes: request.limits?.processes ?? configuration.workloadLimits.processes,
            cpuMillicores: request.limits?.cpuMillicores ?? configuration.workloadLimits.cpuMillicores)
        let template = AgentDeployRequestTemplate(
            argv: request.argv ?? [], environment: WorkloadConnection.workloadEnvironment(checked.environment),
            limits: resource, network: request.network ?? .host,
            stopGraceMilliseconds: Int(configuration.stopGracePeriodSeconds * 1000),
            artifactPath: artifact.path)
        var record = WorkloadRecord(
            id: id, namespace: namespace, name: claims.name, type: type, hash: artifact.sha256,
            unverified: checked.claimedHash == nil, size: artifact.size,
            description: request.description, essential: request.essential ?? false, claims: claims,
            agentRequest: template, startedAt: Date())
        record.reschedulable = request.reschedulable == true
        if case .autostart = source { record.autostarted = true }
        record.triggerSubjects = checked.triggers
        do {
            record.hostServicesConnection = try await WorkloadConnection.connect(
                request.hostServices, field: "host_services", seedVariable: WorkloadConnection.hostServicesSeedVariable,
                environment: checked.environment, name: "nex-node host services \(namespace)/\(claims.name)",
                eventLoop: context.workloadLoop)
        } catch {
            machine.reservationAbandoned(reservation)
            throw error
        }
        records[id] = record
        let committed = machine.reservationCommitted(reservation, workload: id, essential: record.essential,
                                                     isFunction: type.isFunction)
        let starting = Self.step("deploy: start in an agent")
        starting.attributes["nex.workload_id"] = id
        defer { starting.end() }
        let agentID: String
        do {
            agentID = try await drive(committed, trigger: (request: request, environment: checked.environment))
        } catch {
            starting.recordError(error)
            throw error
        }
        starting.end()
        switch source {
        case .own, .autostart: break
        case .request, .adopted:
            do {
                try ledger.record(checked.token, expires: claims.expires)
            } catch {
                // Running, but a replay of this token after a restart would not be recognised.
                logger.error("deploy token not recorded", metadata: ["jti": "\(claims.id)", "error": "\(error)"])
            }
        }
        do {
            if case .autostart = source {} else {
                try await stateStore?.record(id: id, namespace: namespace, request: request, acceptedAt: acceptedAt)
            }
        } catch {
            logger.error("workload not recorded in the state bucket: it will not come back after a restart",
                         metadata: ["id": "\(id)", "error": "\(error)"])
        }
        logger.info(restoring == nil ? "workload deployed" : "workload restored", metadata: [
            "workload": "\(record.name)", "id": "\(id)", "namespace": "\(namespace)", "agent": "\(agentID)",
            "cached": "\(artifact.fromCache)", "ms": "\(started.duration(to: .now).milliseconds)",
        ])
        return RunResponse(started: true, id: id, issuer: claims.issuer, name: claims.name)
    }

    /// A span for one step of a deploy, a child of the control request's span (ended by the
    /// caller; ending twice is harmless).
    static func step(_ name: String) -> any Span {
        InstrumentationSystem.tracer.startSpan(name, context: .current ?? .topLevel)
    }

    /// The deploy request's checks, in Nex 0.2's order; none awaits.
    /// A deploy may ask for limits up to the node's `max_workload_limits`, no more, and none
    /// may be negative.
    static func checkLimits(_ limits: ResourceLimits?, within maxima: ResourceLimits) throws {
        guard let limits else { return }
        for (name, value, maximum) in limits.each(against: maxima) {
            guard let value else { continue }
            guard value > 0 else { throw NexControlError.badRequest("limits.\(name) must be greater than 0 (got \(value))") }
            if let maximum, maximum > 0, value > maximum {
                throw NexControlError.badRequest("limits.\(name) \(value) is above this node's maximum \(maximum) (max_workload_limits.\(name))")
            }
        }
    }

    private func check(_ request: DeployRequest, at date: Date, restoring: Bool, validIssuers: [String]) throws
        -> CheckedDeploy
    {
        let recipient = try environmentKey(for: request)
        guard let type = WorkloadType(name: request.type) else {
            throw NexControlError.badRequest("unknown workload type '\(request.type)' (native, wasm, javascript, v8)")
        }
        guard configuration.workloadTypes.contains(type) else {
            throw NexControlError.badRequest(
                "workload type \(type.rawValue) is not allowed on node \(nodeID) (workload_types: \(configuration.workloadTypes.map(\.rawValue).joined(separator: ", ")))")
        }
        try Self.checkLimits(request.limits, within: configuration.maxWorkloadLimits)
        if request.network == WorkloadNetwork.none && configuration.noSandbox {
            throw NexControlError.badRequest("network none needs a sandbox, and node \(nodeID) runs with no_sandbox")
        }
        let triggers = request.triggerSubjects ?? []
        if type.isFunction {
            do {
                try TriggerSubjects.check(triggers, denied: configuration.denyTriggerSubjects)
            } catch {
                throw NexControlError.badRequest("\(error)")
            }
            if request.essential == true {
                throw NexControlError.badRequest("functions cannot be essential: only native services are restarted")
            }
        } else if !triggers.isEmpty {
            throw NexControlError.badRequest("trigger_subjects are for functions (wasm, javascript, v8), not \(type.rawValue) services")
        }
        let environment: [String: String]
        do {
            environment = try EnvironmentSealing.open(request.environment, senderPublicKey: request.senderPublicKey,
                                                      recipient: recipient)
        } catch {
            throw NexControlError.badRequest("environment: \(error)")
        }
        let claims: WorkloadClaims
        do {
            claims = try WorkloadClaims.verifyDeploy(request.workloadJWT, validIssuers: validIssuers, at: date,
                                                     allowUnverifiedHash: configuration.allowUnverifiedHash)
        } catch {
            throw NexControlError.badRequest("workload_jwt: \(error)")
        }
        let claimedHash = claims.verifiedHash
        if claimedHash == nil {
            logger.warning("deploying an artifact whose hash is not verified (allow_unverified_hash)",
                           metadata: ["workload": "\(claims.name)", "issuer": "\(claims.issuer)",
                                      "claimed_hash": "\(ArtifactError.shown(claims.artifactHash ?? "none").debugDescription)"])
        }
        guard !claims.id.isEmpty else {
            throw NexControlError.badRequest("workload_jwt: the token has no jti; a deploy token needs one")
        }
        // One issuer cannot use up another's tokens: the ledger is keyed by issuer and jti.
        let token = "\(claims.issuer).\(claims.id)"
        // A restored workload's token was used by the deploy that started it: that is the point.
        guard restoring || !ledger.contains(token) else { throw Self.tokenUsed(claims) }
        let location: ArtifactLocation
        do {
            location = try ArtifactLocation(validating: request.location)
        } catch {
            throw NexControlError.badRequest("location: \(error)")
        }
        return CheckedDeploy(type: type, triggers: triggers, environment: environment, claims: claims,
                             claimedHash: claimedHash, token: token, location: location)
    }

    /// The key that opens the deploy's environment: the node's own, or for a reschedulable
    /// workload (an essential service only, on a node of a nexus that keeps state) the nexus's.
    private func environmentKey(for request: DeployRequest) throws -> XKeyPair {
        guard request.reschedulable == true else { return context.identity.curveKey }
        guard request.type == WorkloadType.native.rawValue, request.essential == true else {
            throw NexControlError.badRequest("reschedulable: only essential native services are rescheduled")
        }
        guard let key = context.nexusCurveKey else {
            throw NexControlError.badRequest(
                "reschedulable: node \(nodeID) has no nexus xkey (nexus_xkey_seed_file), so no other node could open the environment")
        }
        guard stateStore != nil, reschedules else {
            throw NexControlError.badRequest(
                "reschedulable: node \(nodeID) has no state or liveness bucket (JetStream), so no other node could find it or see this one lost")
        }
        return key
    }

    private static func tokenUsed(_ claims: WorkloadClaims) -> NexControlError {
        .badRequest("workload_jwt: deploy token \(claims.id) for \(claims.name) was already used; each deploy needs a fresh token")
    }

    private static func refusal(_ action: WorkloadStateMachine.Action) -> NexControlError {
        if case .refuse(let reason) = action { return .badRequest(reason) }
        return .badRequest("the deploy cannot go on (\(action))")
    }

    /// Carries out a deploy's (or a restart's) actions, feeding each await's result back to the
    /// machine, until the workload runs (returns its agent) or the machine abandons it (throws
    /// its reason). `trigger` is the deploy's request, for a function's first start.
    @discardableResult
    private func drive(_ first: WorkloadStateMachine.Action,
                       trigger: (request: DeployRequest, environment: [String: String])?) async throws -> String {
        var action = first
        var agent: AgentProcess?
        while true {
            switch action {
            case .assignAgent(let id):
                do {
                    let acquired = try await supervisor.acquire(network: records[id]?.agentRequest.network ?? .host)
                    agent = acquired
                    action = machine.agentAssigned(id, agent: acquired.id)
                } catch {
                    action = machine.agentUnavailable(id, reason: "no agent to run workload \(records[id]?.name ?? id): \(error)")
                }
            case .sendDeploy(let id, let agentID):
                guard let record = records[id], let process = agent, process.id == agentID else {
                    action = machine.agentRefused(id, agent: agentID, reason: "workload \(id) has no record")
                    continue
                }
                routes.set(agentID, LogRoute(namespace: record.namespace, name: record.name, workloadID: id))
                action = await sendDeploy(record, to: process)
            case .startTrigger(let id, let agentID):
                guard let record = records[id], let trigger else {
                    action = machine.triggerFailed(id, agent: agentID, reason: "workload \(id) has no trigger request")
                    continue
                }
                do {
                    let started = try await startTrigger(record, agentID: agentID, request: trigger.request,
                                                         environment: trigger.environment)
                    action = machine.triggerStarted(id, agent: agentID)
                    if case .replyStarted = action {
                        records[id]?.trigger = started
                    } else {
                        await started.stop()
                    }
                } catch {
                    action = machine.triggerFailed(id, agent: agentID, reason: "\(error)")
                }
            case .replyStarted(let id, let agentID), .restarted(let id, let agentID):
                records[id]?.startedAt = Date()
                records[id]?.trigger?.route(to: agentID, direct: records[id]?.directAgent)
                return agentID
            case .abandon(let id, let reason, let releaseAgent, let cleanUp):
                if let releaseAgent { await release(releaseAgent) }
                if cleanUp { await self.cleanUp(id) }
                throw NexControlError.badRequest(reason)
            case .none, .refuse, .fetchArtifact, .createWorkload, .stop, .end, .scheduleRestart:
                await perform(action)
                throw NexControlError.badRequest("the workload's start was interrupted")
            }
        }
    }

    /// Places the artifact in the agent's directory and has the agent start the workload;
    /// returns what the machine makes of its answer.
    private func sendDeploy(_ record: WorkloadRecord, to agent: AgentProcess) async -> WorkloadStateMachine.Action {
        let artifactPath: String
        do {
            let cached = CachedArtifact(path: record.agentRequest.artifactPath, sha256: record.hash, size: record.size,
                                        fromCache: true)
            artifactPath = try cache.place(cached, in: agent.directory, named: "workload")
        } catch {
            return machine.agentRefused(record.id, agent: agent.id, reason: "artifact for \(record.name): \(error)")
        }
        // The sandbox's cgroup enforces memory, processes and CPU; the agent applies the rest
        // (and memory and processes by rlimit where there is no cgroup).
        var limits = record.agentRequest.limits
        var enforced: [String] = []
        if let cgroup = agent.cgroup {
            do {
                enforced = try cgroup.apply(limits)
            } catch {
                return machine.agentRefused(record.id, agent: agent.id, reason: "limits for \(record.name): \(error)")
            }
            if enforced.contains("cgroup_memory") { limits.memoryBytes = nil }
            if enforced.contains("cgroup_pids") { limits.processes = nil }
        } else if (limits.cpuMillicores ?? 0) > 0 {
            return machine.agentRefused(record.id, agent: agent.id,
                                        reason: "workload \(record.name) asks for cpu_millicores, which this node cannot enforce (no cgroup for its sandboxes)")
        }
        limits.cpuMillicores = nil
        let request = AgentDeployRequest(
            workloadID: record.id, workloadName: record.name, namespace: record.namespace,
            workloadType: record.type, argv: record.agentRequest.argv,
            environment: record.agentRequest.environment, essential: record.essential, hash: record.hash,
            totalBytes: record.size, artifactPath: artifactPath,
            limits: limits, logRate: configuration.logRateLimit,
            stopGraceMilliseconds: record.agentRequest.stopGraceMilliseconds)
        let response: AgentDeployResponse
        do {
            let reply = try await context.bus.request(
                ByteBuffer(bytes: try JSONEncoder().encode(request)),
                to: AgentBusSubject.toAgent(agent.id, AgentVerb.deploy), timeout: .seconds(10))
            response = try JSONDecoder().decode(AgentDeployResponse.self, from: Data(reply.payload.readableBytesView))
        } catch {
            return machine.agentRefused(record.id, agent: agent.id,
                                        reason: "agent \(agent.id) did not take workload \(record.name): \(error)")
        }
        guard response.accepted else {
            return machine.agentRefused(record.id, agent: agent.id,
                                        reason: "workload \(record.name) did not start: \(response.message)")
        }
        records[record.id]?.directAgent = response.triggerKey.flatMap { key in
            agent.socketChannel.map { DirectTriggerAgent(id: agent.id, key: key, channel: $0) }
        }
        records[record.id]?.limitsApplied = enforced + response.limitsApplied
            + (record.agentRequest.network == .none ? ["network_none"] : [])
        return machine.agentAccepted(record.id, agent: agent.id)
    }

    /// Subscribes a function's trigger subjects on its trigger connection: the deploy's
    /// `trigger_connection` when given (its seed only from the sealed environment), else the
    /// node's host-services connection.
    private func startTrigger(_ record: WorkloadRecord, agentID: String, request: DeployRequest,
                              environment: [String: String]) async throws -> FunctionTrigger {
        let own = try await WorkloadConnection.connect(
            request.triggerConnection, field: "trigger_connection", seedVariable: WorkloadConnection.triggerSeedVariable,
            environment: environment, name: "nex-node triggers \(record.namespace)/\(record.name)",
            eventLoop: context.workloadLoop)
        let trigger = FunctionTrigger(
            target: .init(namespace: record.namespace, workloadName: record.name, workloadID: record.id, nodeID: nodeID),
            subjects: record.triggerSubjects, connection: own ?? context.hostServices, ownsConnection: own != nil,
            control: context.control, bus: context.bus, timeout: Self.invocationTimeout, logger: logger,
            metrics: context.metrics?.function(namespace: record.namespace, name: record.name),
            credentials: context.triggerCredentials)
        trigger.route(to: agentID)
        do {
            try await trigger.start()
        } catch {
            await trigger.stop()
            throw NexControlError.badRequest("cannot subscribe the trigger subjects: \(error)")
        }
        return trigger
    }

    /// How long the node waits for an invocation's answer from the agent: the longest a
    /// function may run, and 2 s more.
    static let invocationTimeout = Duration.seconds(FunctionLimits().timeout.components.seconds + 2)

    func attach(_ server: HostServicesServer) {
        hostServicesServer = server
    }

    /// Stops what a workload that ended holds (trigger, own connection, log routes) and
    /// forgets it.
    private func cleanUp(_ id: String) async {
        machine.cleanedUp(id)
        guard let record = records.removeValue(forKey: id) else { return }
        routes.forget(workloadID: id)
        await record.trigger?.stop()
        await closeConnection(of: record)
    }

    /// Closes a workload's own host-services connection, if it had one.
    private func closeConnection(of record: WorkloadRecord) async {
        guard let connection = record.hostServicesConnection else { return }
        await hostServicesServer?.forget(connection: connection)
        await connection.close()
    }

    /// What a function's host-service call may reach, for the agent that runs it (nil: none).
    public func hostServiceScope(agentID: String) -> HostServiceScope? {
        // Only functions use host services; a native service has its own connections.
        guard let id = machine.workload(runningOn: agentID), let record = records[id], record.type.isFunction
        else { return nil }
        return HostServiceScope(namespace: record.namespace, workloadName: record.name,
                                connection: record.hostServicesConnection ?? context.hostServices)
    }

    private func release(_ agentID: String) async {
        // Lines the agent wrote before it ended may still be queued behind the end event:
        // keep routing them for a while (agent ids are never reused).
        let now = ContinuousClock.now
        retiredRoutes.removeAll { retired in
            guard retired.until <= now else { return false }
            routes.remove(retired.agentID)
            return true
        }
        retiredRoutes.append((agentID, now.advanced(by: .seconds(30))))
        await supervisor.retire(agentID)
    }

    // MARK: Stop

    public func stop(namespace: String, request: StopRequest) async throws -> StopResponse {
        // Unknown, or another namespace's: the same answer, so nothing leaks.
        guard let record = records[request.workloadID], record.namespace == namespace,
              machine.workload(request.workloadID)?.isLive == true
        else {
            throw NexControlError.badRequest("no such workload: \(request.workloadID)")
        }
        do {
            if record.autostarted {
                // The node signed its deploy: only the operator's issuers stop it.
                let operators = configuration.autostartStopIssuers
                guard !operators.isEmpty else {
                    throw NexControlError.badRequest(
                        "an autostart workload is stopped only by an issuer of autostart.stop_issuers, and the node lists none")
                }
                let stop = try WorkloadClaims.verify(request.workloadJWT, validIssuers: operators)
                guard stop.name == record.name else {
                    throw NexControlError.badRequest("the stop token names \(stop.name), not \(record.name)")
                }
            } else {
                _ = try record.claims.verifyStop(request.workloadJWT, validIssuers: configuration.validIssuers)
            }
        } catch {
            throw NexControlError.badRequest("workload_jwt: \(error)")
        }
        let action = machine.stopRequested(record.id)
        guard case .stop(let id, let agentID) = action else { throw Self.refusal(action) }
        await carryOutStop(id, undeploy: agentID)
        await forget(id)
        logger.info("workload stopped", metadata: ["workload": "\(record.name)", "id": "\(record.id)"])
        return StopResponse(stopped: true, id: record.id, issuer: record.claims.issuer, name: record.name)
    }

    /// Removes a workload that is gone for good from the state bucket.
    private func forget(_ id: String) async {
        do {
            try await stateStore?.forget(id: id)
        } catch {
            logger.warning("workload record not removed from the state bucket: it would come back after a restart",
                           metadata: ["id": "\(id)", "error": "\(error)"])
        }
    }

    /// Opens the state bucket (creating it), before the node takes any deploy: every workload
    /// it starts is recorded. Without JetStream on the control plane, warns and goes on
    /// without (workloads then do not come back after a restart).
    public func openStateBucket() async {
        do {
            stateStore = try await WorkloadStateStore.open(
                bucket: configuration.stateBucket, replicas: configuration.stateReplicas, control: context.control,
                identity: context.identity, nexus: configuration.nexus,
                nexusKey: try context.nexusCurveKey.map(WorkloadStateStore.nexusSigningKey))
        } catch {
            logger.warning("no workload state bucket: workloads will not come back after a restart",
                           metadata: ["bucket": "\(configuration.stateBucket)", "error": "\(error)"])
        }
    }

    /// The rescheduler runs: reschedulable deploys are accepted.
    func enableRescheduling() { reschedules = true }

    /// Deploys again what this node ran before it stopped (its records in the state bucket):
    /// same ids, same requests. Call once the agents' services run.
    public func restore() async {
        guard let stateStore else { return }
        let saved: [WorkloadStateStore.Stored]
        do {
            saved = try await stateStore.records(logger: logger)
        } catch {
            logger.error("cannot read the workload state bucket", metadata: ["error": "\(error)"])
            return
        }
        for stored in saved {
            await resume(stored)
        }
    }

    /// Deploys one of this node's records again: a reschedulable one once taken back by
    /// compare-and-set (a node of the nexus that adopted it meanwhile wins). A refused deploy
    /// forgets the record; a failure to reach the bucket leaves it.
    func resume(_ stored: WorkloadStateStore.Stored) async {
        guard let stateStore else { return }
        let record = stored.record
        if record.isReschedulable {
            do {
                guard try await stateStore.claim(stored) else {
                    logger.info("a workload of this node was taken over by another node", metadata: ["id": "\(record.id)"])
                    return
                }
            } catch {
                logger.error("workload record not taken back; it stays for this node or another",
                             metadata: ["id": "\(record.id)", "error": "\(error)"])
                return
            }
        }
        do {
            let run = try await deploy(namespace: record.namespace, request: record.request, source: .own(record))
            await publishEvent(NexEventType.workloadRestored, namespace: record.namespace, source: "\(nodeID)-\(run.id)",
                               WorkloadStatusEvent(workloadName: run.name, workloadID: run.id, namespace: record.namespace,
                                                   code: 0, message: "brought back after the node restarted"))
        } catch let refusal as NexControlError {
            logger.error("workload not restored; its record is removed", metadata: ["id": "\(record.id)", "error": "\(refusal)"])
            if records[record.id] == nil { await forget(record.id) }
        } catch {
            logger.error("workload not restored", metadata: ["id": "\(record.id)", "error": "\(error)"])
        }
    }

    /// Starts another node's reschedulable workload here, under its id (the record is already
    /// marked as adopted by this node), and announces it with `workload_rescheduled`.
    func adopt(_ record: WorkloadStateStore.Record, from owner: String, reason: String) async throws {
        let run = try await deploy(namespace: record.namespace, request: record.request, source: .adopted(record))
        logger.info("workload rescheduled here", metadata: ["id": "\(run.id)", "from": "\(owner)", "reason": "\(reason)"])
        await publishEvent(NexEventType.workloadRescheduled, namespace: record.namespace, source: "\(nodeID)-\(run.id)",
                           WorkloadRescheduledEvent(workloadName: run.name, workloadID: run.id, namespace: record.namespace,
                                                    fromNode: owner, toNode: nodeID, reason: reason))
    }

    /// Another node took over workload `id` (its record here was adopted or removed while it
    /// runs: this node was thought lost, or it is leaving in lame duck mode): stops the copy
    /// here, leaving the record to the new node.
    func handOff(_ id: String, to adopter: String?) async {
        guard let record = records[id], machine.workload(id)?.isLive == true else { return }
        let action = machine.stopRequested(id)
        guard case .stop(_, let agentID) = action else { return }
        logger.warning("workload taken over by another node; stopping it here",
                       metadata: ["id": "\(id)", "workload": "\(record.name)", "by": "\(adopter ?? "unknown")"])
        await carryOutStop(id, undeploy: agentID)
    }

    /// Ids of the live reschedulable workloads.
    var reschedulableIDs: [String] {
        records.values.filter { $0.reschedulable && machine.workload($0.id)?.isLive == true }.map(\.id)
    }

    /// Whether workload `id` is deployed and not stopping.
    func isLive(_ id: String) -> Bool { machine.workload(id)?.isLive == true }

    /// A `.stop` action: the trigger first (no new invocations), then the agent, then what the
    /// workload held.
    private func carryOutStop(_ id: String, undeploy agentID: String?) async {
        await records[id]?.trigger?.stop()
        if let agentID { await undeploy(agentID, grace: records[id]?.agentRequest.stopGraceMilliseconds ?? 0) }
        if let record = records.removeValue(forKey: id) {
            routes.forget(workloadID: id)
            await closeConnection(of: record)
        }
        machine.stopFinished(id)
    }

    /// Asks the agent to stop the workload (SIGTERM, then SIGKILL after the grace period), then retires the agent.
    private func undeploy(_ agentID: String, grace: Int) async {
        do {
            _ = try await context.bus.request(ByteBuffer(), to: AgentBusSubject.toAgent(agentID, AgentVerb.undeploy),
                                              timeout: .milliseconds(Int64(grace) + 3000))
        } catch {
            logger.warning("agent did not confirm the stop; killing it", metadata: ["agent": "\(agentID)", "error": "\(error)"])
        }
        await release(agentID)
    }

    /// Stops every workload gracefully (SIGTERM to each, in parallel), for the node's shutdown.
    public func stopAll() async {
        nodeStopping = true
        restartRequestsSink.finish()
        let actions = machine.nodeStopping()
        await withTaskGroup(of: Void.self) { group in
            for case .stop(let id, let agentID) in actions {
                group.addTask { await self.carryOutStop(id, undeploy: agentID) }
            }
        }
    }

    // MARK: Exits and restarts

    private func handleAgentEvent(_ message: NATSMessage) async {
        let tokens = message.subject.split(separator: ".")
        guard tokens.count == 4 else { return }
        let agentID = String(tokens[1]), type = String(tokens[3])
        // Only the agent protocol's events are republished under the node's name.
        guard type == AgentVerb.workloadDeployed || type == AgentVerb.workloadUndeployed
                || type == AgentVerb.triggersLost else { return }
        guard let event = try? JSONDecoder().decode(AgentWorkloadEvent.self, from: Data(message.payload.readableBytesView)),
              machine.workload(runningOn: agentID) == event.workloadID, let record = records[event.workloadID]
        else { return }
        if type == AgentVerb.triggersLost { return record.trigger?.directConnectionLost(agentID: agentID) ?? () }
        await publishWorkloadEvent(NexEventType(type), record: record, code: event.code, message: event.message)
        if type == AgentVerb.workloadUndeployed {
            let action = machine.workloadExited(
                agent: agentID, code: event.code, reason: event.message ?? "exited with code \(event.code)",
                ranFor: ranFor(record), lameDuck: context.isLameDuck())
            await perform(action)
        }
    }

    /// `hostint.<id>.invocations`: what a function's agent answered on its own connection.
    private func handleInvocations(_ message: NATSMessage) async {
        let tokens = message.subject.split(separator: ".")
        guard tokens.count == 3, let id = machine.workload(runningOn: String(tokens[1])),
              let trigger = records[id]?.trigger else { return }
        guard let report = try? JSONDecoder().decode(AgentInvocationReport.self, from: Data(message.payload.readableBytesView)),
              report.invocations.count <= AgentInvocationReport.maximumCount else {
            logger.warning("agent sent a malformed invocation report", metadata: ["agent": "\(tokens[1])"])
            return
        }
        await trigger.record(report, from: String(tokens[1]))
    }

    private func agentExited(_ agentID: String, status: Int32) async {
        guard let id = machine.workload(runningOn: agentID), let record = records[id] else { return }
        let reason = status < 0 ? "its agent was killed by signal \(-status)" : "its agent exited with code \(status)"
        let action = machine.agentLost(agentID, code: status == 0 ? -1 : status, reason: reason, ranFor: ranFor(record),
                                       lameDuck: context.isLameDuck())
        await perform(action)
    }

    private func ranFor(_ record: WorkloadRecord) -> Duration {
        .milliseconds(Int64(Date().timeIntervalSince(record.startedAt) * 1000))
    }

    /// Carries out an action that is not part of a deploy: a workload ended, is restarted, or
    /// is stopped.
    private func perform(_ action: WorkloadStateMachine.Action) async {
        switch action {
        case .end(let id, let agentID, let reason, let code):
            guard let record = records[id] else { return machine.cleanedUp(id) }
            record.trigger?.route(to: nil)
            if let code { await publishWorkloadEvent(.workloadUndeployed, record: record, code: code, message: reason) }
            if let agentID { await release(agentID) }
            await cleanUp(id)
            // Kept when the node stops, and a leaving node's reschedulable service is the nexus's to move.
            if !nodeStopping && !(record.reschedulable && context.isLeaving()) { await forget(id) }
            logger.info("workload ended", metadata: ["workload": "\(record.name)", "id": "\(id)", "reason": "\(reason)"])
        case .scheduleRestart(let id, let agentID, let delay, let restarts, let reason, let code):
            guard let record = records[id] else { return }
            record.trigger?.route(to: nil)
            records[id]?.restarts = restarts
            context.metrics?.restarted()
            if let code { await publishWorkloadEvent(.workloadUndeployed, record: record, code: code, message: reason) }
            if let agentID { await release(agentID) }
            logger.warning("essential workload ended; restarting", metadata: [
                "workload": "\(record.name)", "id": "\(id)", "reason": "\(reason)", "delay": "\(delay)",
                "restarts": "\(restarts)",
            ])
            await publishEvent(NexEventType.workloadRestarted, namespace: record.namespace, source: "\(nodeID)-\(id)",
                               WorkloadRestartedEvent(workloadName: record.name, workloadID: id, restarts: restarts,
                                                      delayMilliseconds: Int(delay.components.seconds * 1000), reason: reason))
            restartRequestsSink.yield((id, delay))
        case .stop(let id, let agentID):
            await carryOutStop(id, undeploy: agentID)
        case .abandon(let id, _, let agentID, let cleanUp):
            if let agentID { await release(agentID) }
            if cleanUp { await self.cleanUp(id) }
        case .none, .refuse, .fetchArtifact, .createWorkload, .assignAgent, .sendDeploy, .startTrigger, .replyStarted,
             .restarted:
            break
        }
    }

    private func restartTimerFired(_ id: String) async {
        let action = machine.restartTimerFired(id, lameDuck: context.isLameDuck())
        guard case .assignAgent = action else { return await perform(action) }
        do {
            try await drive(action, trigger: nil)
        } catch {
            logger.error("restart failed", metadata: ["workload": "\(records[id]?.name ?? "")", "id": "\(id)",
                                                      "error": "\(error)"])
        }
    }

    // MARK: Events

    private func publishWorkloadEvent(_ type: NexEventType, record: WorkloadRecord, code: Int32, message: String?) async {
        await publishEvent(type, namespace: record.namespace, source: "\(nodeID)-\(record.id)",
                           WorkloadStatusEvent(workloadName: record.name, workloadID: record.id, namespace: record.namespace,
                                               code: Int(code), message: message))
    }

    private func publishEvent<T: Codable & Sendable>(_ type: NexEventType, namespace: String, source: String, _ data: T) async {
        let event = NexEvent(source: source, type: type, data: data, namespace: namespace)
        do {
            try await context.control.publish(ByteBuffer(bytes: try JSONEncoder().encode(event)),
                                              to: NexSubject.event(namespace: namespace, type: type))
        } catch {
            logger.warning("event not published", metadata: ["type": "\(type)", "error": "\(error)"])
        }
    }

    // MARK: What the node reports

    public func machines(namespace: String) -> [MachineSummary] {
        records.values.filter { $0.namespace == namespace && machine.workload($0.id)?.isLive == true }
            .sorted { $0.startedAt < $1.startedAt }.map { record in
            let state = machine.state(of: record.id).map(Self.reportedState) ?? "stopping"
            let uptime = Uptime.format(seconds: Int(Date().timeIntervalSince(record.startedAt)))
            // Functions: the time spent running invocations; services: uptime (as Nex 0.2).
            let runtime = record.trigger.map { Self.formatNanoseconds($0.runtimeNanoseconds) } ?? uptime
            return MachineSummary(
                id: record.id, healthy: state == "running", uptime: uptime, namespace: record.namespace,
                workload: .init(name: record.name, description: record.description, runtime: runtime,
                                type: record.type.rawValue, hash: record.hash, unverified: record.unverified ? true : nil),
                state: state, restarts: record.restarts, limitsApplied: record.limitsApplied,
                logLinesDropped: routes.droppedLines(of: record.id))
        }
    }

    /// Every live workload for the metrics: state, what its sandbox uses, its log lines.
    func metricsWorkloads() async -> [NodeMetricsSnapshot.Workload] {
        let live = records.values.compactMap { record -> (WorkloadRecord, String, String?)? in
            guard let workload = machine.workload(record.id), workload.isLive else { return nil }
            let state = machine.state(of: record.id).map(Self.reportedState) ?? "stopping"
            return (record, state, workload.agent)
        }
        let usage = await supervisor.usage(of: live.compactMap { $0.2 })
        return live.map { record, state, agent in
            NodeMetricsSnapshot.Workload(
                id: record.id, name: record.name, namespace: record.namespace, type: record.type.rawValue, state: state,
                usage: agent.flatMap { usage[$0] }, logLines: routes.forwardedLines(of: record.id),
                logLinesDropped: routes.droppedLines(of: record.id) ?? 0)
        }
    }

    /// The state names the control API reports (Nex 0.2's).
    static func reportedState(_ state: WorkloadStateMachine.State) -> String {
        switch state {
        case .deploying: "starting"
        case .running: "running"
        case .restarting: "restarting"
        case .stopping, .stopped, .failed: "stopping"
        }
    }

    /// `850µs`, `12.3ms`, `4.56s`.
    static func formatNanoseconds(_ nanos: UInt64) -> String {
        if nanos < 1_000_000 { return "\(nanos / 1000)µs" }
        if nanos < 1_000_000_000 { return "\(nanos / 1_000_000).\(nanos / 100_000 % 10)ms" }
        return "\(nanos / 1_000_000_000).\(String(nanos / 10_000_000 % 100).leftPadded(to: 2))s"
    }

    /// Workloads of `namespace`, optionally only the one with this id or name.
    public func running(namespace: String, matching workload: String?) async -> [WorkloadPingResponse.Machine] {
        let found = records.values
            .filter { $0.namespace == namespace && machine.workload($0.id)?.isLive == true }
            .filter { workload == nil || $0.id == workload || $0.name == workload }
        let agents = found.compactMap { machine.workload($0.id)?.agent }
        let usage = await supervisor.usage(of: agents)
        return found.map { record in
            let used = machine.workload(record.id)?.agent.flatMap { usage[$0] }
            return WorkloadPingResponse.Machine(
                id: record.id, namespace: record.namespace, name: record.name, type: record.type.rawValue,
                state: machine.state(of: record.id).map(Self.reportedState) ?? "stopping",
                uptime: Uptime.format(seconds: Int(Date().timeIntervalSince(record.startedAt))),
                restarts: record.restarts, cpuSeconds: used?.cpuSeconds, memoryBytes: used?.memoryBytes)
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

