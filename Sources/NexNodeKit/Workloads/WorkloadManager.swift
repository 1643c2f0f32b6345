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
import Synchronization

/// Deploys, watches, restarts and stops the node's workloads, each in an agent from the
/// ``AgentSupervisor``.
///
/// DEPLOY is checked in Nex 0.2's order with our fixes (the JWT's `hash` claim is compared
/// with the artifact; every refusal names what was wrong). Agent output becomes log records
/// on `$NEX.logs.<ns>.<node>.<workload_name>.<workload_id>`, agent events are republished on
/// `$NEX.events.<ns>.<type>`, and essential services are restarted with ``RestartBackoff``.
public actor WorkloadManager {
    public struct Context: Sendable {
        public var nodeID: String
        public var configuration: NodeConfiguration
        public var identity: NodeIdentity
        /// The control connection: artifacts, events and logs go through it.
        public var control: NATSClient
        /// The node's own connection to the agent bus.
        public var bus: NATSClient
        /// Host services and triggers use this unless a deploy brings its own: the node's
        /// host-services connection (the workload plane), never the control connection.
        public var hostServices: NATSClient
        public var isLameDuck: @Sendable () -> Bool

        public init(nodeID: String, configuration: NodeConfiguration, identity: NodeIdentity, control: NATSClient,
                    bus: NATSClient, hostServices: NATSClient, isLameDuck: @escaping @Sendable () -> Bool) {
            self.nodeID = nodeID; self.configuration = configuration; self.identity = identity
            self.control = control; self.bus = bus; self.hostServices = hostServices
            self.isLameDuck = isLameDuck
        }
    }

    private let context: Context
    private let supervisor: AgentSupervisor
    private let cache: ArtifactCache
    private let logger: Logger
    private var workloads: [String: WorkloadRecord] = [:]
    /// agent id → workload id, shared with the log forwarder (which runs outside the actor).
    private let routes = LogRoutes()
    private var tasks: [Task<Void, Never>] = []
    private var stopping = false
    /// Told when a workload's own host-services connection closes (it caches bucket handles).
    private var hostServicesServer: HostServicesServer?
    /// Deploys under way, from their first check to their answer (`max_concurrent_deploys`).
    private var deploysUnderWay = 0
    /// Workload slots and artifact bytes held by deploys not yet recorded in ``workloads``:
    /// taken before the first await, so concurrent deploys cannot all pass the limits.
    private var reservations: [Int: Int] = [:]
    private var nextReservation = 0
    /// Deploy tokens accepted (persisted) and being deployed now: each `jti` starts one workload.
    private var ledger: DeployTokenLedger
    private var tokensUnderWay: Set<String> = []

    public init(context: Context, supervisor: AgentSupervisor, cache: ArtifactCache, logger: Logger) throws {
        self.context = context
        self.supervisor = supervisor
        self.cache = cache
        self.logger = logger
        self.ledger = try DeployTokenLedger(stateDirectory: context.configuration.stateDirectory ?? StateDirectory.defaultPath)
    }

    private var configuration: NodeConfiguration { context.configuration }
    private var nodeID: String { context.nodeID }

    /// Starts forwarding agent logs and events and watching agents.
    public func start() async throws {
        let logs = try await context.bus.subscribe(to: AgentBusSubject.toHost("*", AgentVerb.logs))
        let events = try await context.bus.subscribe(to: AgentBusSubject.toHost("*", AgentVerb.events) + ".*")
        try await context.bus.flush()
        let forwarder = LogForwarder(nodeID: nodeID, routes: routes, control: context.control)
        tasks.append(Task { await forwarder.run(logs) })
        tasks.append(Task { [weak self] in
            for await message in events { await self?.handleAgentEvent(message) }
        })
        let notices = supervisor.noticeStream
        tasks.append(Task { [weak self] in
            for await notice in notices {
                if case .exited(let agentID, let status) = notice { await self?.agentExited(agentID, status: status) }
            }
        })
    }

    /// Workloads deployed and not yet stopped.
    public var count: Int { workloads.count }

    // MARK: Deploy

    public func deploy(namespace: String, request: DeployRequest) async throws -> RunResponse {
        let started = ContinuousClock.now
        guard !stopping else { throw NexControlError.badRequest("node \(nodeID) is stopping") }
        if context.isLameDuck() {
            throw NexControlError.badRequest("node \(nodeID) is in lame duck mode and accepts no new workloads")
        }
        // Everything up to the reservation runs without an await: the limits hold for
        // concurrent deploys too.
        let limits = configuration.nodeLimits
        guard deploysUnderWay < limits.maxConcurrentDeploys else {
            throw NexControlError.badRequest(
                "node \(nodeID) is busy with \(deploysUnderWay) deploys (node_limits.max_concurrent_deploys); try again")
        }
        if limits.maxWorkloads > 0, workloads.count + reservations.count >= limits.maxWorkloads {
            throw NexControlError.badRequest(
                "node \(nodeID) runs or is starting \(workloads.count + reservations.count) workloads; node_limits.max_workloads is \(limits.maxWorkloads)")
        }
        guard let type = WorkloadType(name: request.type) else {
            throw NexControlError.badRequest("unknown workload type '\(request.type)' (native, wasm, javascript, v8)")
        }
        guard configuration.workloadTypes.contains(type) else {
            throw NexControlError.badRequest(
                "workload type \(type.rawValue) is not allowed on node \(nodeID) (workload_types: \(configuration.workloadTypes.map(\.rawValue).joined(separator: ", ")))")
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
            throw NexControlError.badRequest("trigger_subjects are for functions (wasm, javascript), not \(type.rawValue) services")
        }
        let environment: [String: String]
        do {
            environment = try EnvironmentSealing.open(request.environment, senderPublicKey: request.senderPublicKey,
                                                      recipient: context.identity.curveKey)
        } catch {
            throw NexControlError.badRequest("environment: \(error)")
        }
        let claims: WorkloadClaims
        do {
            claims = try WorkloadClaims.verifyDeploy(request.workloadJWT, validIssuers: configuration.validIssuers)
        } catch {
            throw NexControlError.badRequest("workload_jwt: \(error)")
        }
        guard let claimedHash = claims.artifactHash else {
            throw NexControlError.badRequest("workload_jwt: the nats.hash claim is missing")
        }
        guard !claims.id.isEmpty else {
            throw NexControlError.badRequest("workload_jwt: the token has no jti; a deploy token needs one")
        }
        // One issuer cannot use up another's tokens: the ledger is keyed by issuer and jti.
        let token = "\(claims.issuer).\(claims.id)"
        guard !ledger.contains(token), !tokensUnderWay.contains(token) else {
            throw NexControlError.badRequest(
                "workload_jwt: deploy token \(claims.id) for \(claims.name) was already used; each deploy needs a fresh token")
        }
        let location: ArtifactLocation
        do {
            location = try ArtifactLocation(validating: request.location)
        } catch {
            throw NexControlError.badRequest("location: \(error)")
        }
        deploysUnderWay += 1
        tokensUnderWay.insert(token)
        let reservation = reserve()
        defer {
            deploysUnderWay -= 1
            tokensUnderWay.remove(token)
            reservations[reservation] = nil
        }

        let artifact: CachedArtifact
        do throws(ArtifactError) {
            artifact = try await cache.fetch(location, expectedSHA256: claimedHash, maxBytes: limits.maxWorkloadBytes,
                                             jetStreamDomain: request.jsDomain, client: context.control)
        } catch {
            logger.info("artifact refused", metadata: ["workload": "\(claims.name)", "namespace": "\(namespace)",
                                                       "error": "\(error.operatorDetail)"])
            throw NexControlError.badRequest("\(error)")
        }
        if limits.maxTotalBytes > 0 {
            let total = workloads.values.reduce(0) { $0 + $1.size } + reservations.values.reduce(0, +) + artifact.size
            guard total <= limits.maxTotalBytes else {
                throw NexControlError.badRequest(
                    "workload \(claims.name) would bring this node over node_limits.max_total_bytes (\(limits.maxTotalBytes))")
            }
        }
        reservations[reservation] = artifact.size

        let id = RandomID.make(length: 20)
        let resource = ResourceLimits(
            memoryBytes: request.limits?.memoryBytes ?? configuration.workloadLimits.memoryBytes,
            openFiles: request.limits?.openFiles ?? configuration.workloadLimits.openFiles,
            processes: request.limits?.processes ?? configuration.workloadLimits.processes)
        let template = AgentDeployRequestTemplate(
            argv: request.argv ?? [], environment: WorkloadConnection.workloadEnvironment(environment), limits: resource,
            stopGraceMilliseconds: Int(configuration.stopGracePeriodSeconds * 1000), artifactPath: artifact.path)
        var record = WorkloadRecord(
            id: id, namespace: namespace, name: claims.name, type: type, hash: artifact.sha256, size: artifact.size,
            description: request.description, essential: request.essential ?? false, claims: claims,
            agentRequest: template, agentID: nil, state: .starting, startedAt: Date())
        record.triggerSubjects = triggers
        record.hostServicesConnection = try await WorkloadConnection.connect(
            request.hostServices, field: "host_services", seedVariable: WorkloadConnection.hostServicesSeedVariable,
            environment: environment, name: "nex-node host services \(namespace)/\(claims.name)")
        // The record takes over the reservation's slot and bytes.
        workloads[id] = record
        reservations[reservation] = nil
        do {
            record = try await startInAgent(record)
            if type.isFunction {
                let trigger = try await startTrigger(record, request: request, environment: environment)
                guard workloads[id] != nil, workloads[id]?.state != .stopping else {
                    await trigger.stop()
                    throw NexControlError.badRequest("workload \(record.name) was stopped while it started")
                }
                record.trigger = trigger
                workloads[id]?.trigger = trigger
            }
        } catch {
            workloads[id] = nil
            routes.forget(workloadID: id)
            if let agentID = record.agentID { await release(agentID) }
            await record.hostServicesConnection?.close()
            throw error
        }
        do {
            try ledger.record(token, expires: claims.expires)
        } catch {
            // Running, but a replay of this token after a restart would not be recognised.
            logger.error("deploy token not recorded", metadata: ["jti": "\(claims.id)", "error": "\(error)"])
        }
        logger.info("workload deployed", metadata: [
            "workload": "\(record.name)", "id": "\(id)", "namespace": "\(namespace)", "agent": "\(record.agentID ?? "")",
            "cached": "\(artifact.fromCache)", "ms": "\(started.duration(to: .now).milliseconds)",
        ])
        return RunResponse(started: true, id: id, issuer: claims.issuer, name: claims.name)
    }

    /// A new reservation of one workload slot (its bytes are set once the artifact is known).
    private func reserve() -> Int {
        nextReservation += 1
        reservations[nextReservation] = 0
        return nextReservation
    }

    /// Takes an agent, places the artifact in its directory and has it start the workload.
    /// Returns the record as running; throws (with the agent retired) when the agent refuses.
    private func startInAgent(_ input: WorkloadRecord) async throws -> WorkloadRecord {
        var record = input
        let agent: AgentProcess
        do {
            agent = try await supervisor.acquire()
        } catch {
            throw NexControlError.badRequest("no agent to run workload \(record.name): \(error)")
        }
        // Stopped (or the node stopping) while we waited for the agent: do not bring it back.
        guard !stopping, let current = workloads[record.id], current.state != .stopping else {
            await supervisor.retire(agent.id)
            throw NexControlError.badRequest("workload \(record.name) was stopped while it started")
        }
        routes.set(agent.id, LogRoute(namespace: record.namespace, name: record.name, workloadID: record.id))
        record.agentID = agent.id
        record.state = current.state
        workloads[record.id] = record
        let artifactPath: String
        do {
            let cached = CachedArtifact(path: record.agentRequest.artifactPath, sha256: record.hash, size: record.size,
                                        fromCache: true)
            artifactPath = try cache.place(cached, in: agent.directory, named: "workload")
        } catch {
            await release(agent.id)
            throw NexControlError.badRequest("artifact for \(record.name): \(error)")
        }
        let request = AgentDeployRequest(
            workloadID: record.id, workloadName: record.name, namespace: record.namespace,
            workloadType: record.type, argv: record.agentRequest.argv,
            environment: record.agentRequest.environment, essential: record.essential, hash: record.hash,
            totalBytes: record.size, artifactPath: artifactPath,
            limits: record.agentRequest.limits, logRate: configuration.logRateLimit,
            stopGraceMilliseconds: record.agentRequest.stopGraceMilliseconds)
        let response: AgentDeployResponse
        do {
            let reply = try await context.bus.request(
                ByteBuffer(bytes: try JSONEncoder().encode(request)),
                to: AgentBusSubject.toAgent(agent.id, AgentVerb.deploy), timeout: .seconds(10))
            response = try JSONDecoder().decode(AgentDeployResponse.self, from: Data(reply.payload.readableBytesView))
        } catch {
            await release(agent.id)
            throw NexControlError.badRequest("agent \(agent.id) did not take workload \(record.name): \(error)")
        }
        guard response.accepted else {
            await release(agent.id)
            throw NexControlError.badRequest("workload \(record.name) did not start: \(response.message)")
        }
        // It may have exited, or been stopped, while we waited for the answer.
        guard var current = workloads[record.id], current.agentID == agent.id, current.state != .stopping, !stopping else {
            throw NexControlError.badRequest("workload \(record.name) ended while it started")
        }
        current.state = .running
        current.startedAt = Date()
        current.limitsApplied = response.limitsApplied
        workloads[record.id] = current
        return current
    }

    /// Subscribes a function's trigger subjects on its trigger connection: the deploy's
    /// `trigger_connection` when given (its seed only from the sealed environment), else the
    /// node's host-services connection.
    private func startTrigger(_ record: WorkloadRecord, request: DeployRequest, environment: [String: String]) async throws
        -> FunctionTrigger
    {
        let own = try await WorkloadConnection.connect(
            request.triggerConnection, field: "trigger_connection", seedVariable: WorkloadConnection.triggerSeedVariable,
            environment: environment, name: "nex-node triggers \(record.namespace)/\(record.name)")
        let trigger = FunctionTrigger(
            target: .init(namespace: record.namespace, workloadName: record.name, workloadID: record.id, nodeID: nodeID),
            connection: own ?? context.hostServices, ownsConnection: own != nil, control: context.control,
            bus: context.bus, timeout: .seconds(FunctionLimits().timeout.components.seconds + 2), logger: logger)
        trigger.route(to: record.agentID)
        do {
            try await trigger.start(subjects: record.triggerSubjects)
        } catch {
            await trigger.stop()
            throw NexControlError.badRequest("cannot subscribe the trigger subjects: \(error)")
        }
        return trigger
    }

    func attach(_ server: HostServicesServer) {
        hostServicesServer = server
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
        guard let record = workloads.values.first(where: { $0.agentID == agentID }), record.type.isFunction else { return nil }
        return HostServiceScope(namespace: record.namespace, workloadName: record.name,
                                connection: record.hostServicesConnection ?? context.hostServices)
    }

    private func release(_ agentID: String) async {
        // Lines the agent wrote before it ended may still be queued behind the end event:
        // keep routing them for a while (agent ids are never reused).
        let routes = self.routes
        Task {
            try? await Task.sleep(for: .seconds(30))
            routes.remove(agentID)
        }
        await supervisor.retire(agentID)
    }

    // MARK: Stop

    public func stop(namespace: String, request: StopRequest) async throws -> StopResponse {
        // Unknown, or another namespace's: the same answer, so nothing leaks.
        guard var record = workloads[request.workloadID], record.namespace == namespace else {
            throw NexControlError.badRequest("no such workload: \(request.workloadID)")
        }
        do {
            _ = try record.claims.verifyStop(request.workloadJWT, validIssuers: configuration.validIssuers)
        } catch {
            throw NexControlError.badRequest("workload_jwt: \(error)")
        }
        guard record.state != .stopping else {
            throw NexControlError.badRequest("workload \(record.id) is already stopping")
        }
        record.state = .stopping
        workloads[record.id] = record
        await record.trigger?.stop()
        await undeploy(record)
        workloads[record.id] = nil
        routes.forget(workloadID: record.id)
        await closeConnection(of: record)
        logger.info("workload stopped", metadata: ["workload": "\(record.name)", "id": "\(record.id)"])
        return StopResponse(stopped: true, id: record.id, issuer: record.claims.issuer, name: record.name)
    }

    /// Asks the agent to stop the workload (SIGTERM, then SIGKILL after the grace period), then retires the agent.
    private func undeploy(_ record: WorkloadRecord) async {
        guard let agentID = record.agentID else { return }
        let grace = Int64(record.agentRequest.stopGraceMilliseconds)
        do {
            _ = try await context.bus.request(ByteBuffer(), to: AgentBusSubject.toAgent(agentID, AgentVerb.undeploy),
                                              timeout: .milliseconds(grace + 3000))
        } catch {
            logger.warning("agent did not confirm the stop; killing it", metadata: ["agent": "\(agentID)", "error": "\(error)"])
        }
        await release(agentID)
    }

    /// Stops every workload gracefully (SIGTERM to each, in parallel), for the node's shutdown.
    public func stopAll() async {
        stopping = true
        for task in tasks { task.cancel() }
        let all = Array(workloads.values)
        for var record in all {
            record.state = .stopping
            workloads[record.id] = record
        }
        await withTaskGroup(of: Void.self) { group in
            for record in all {
                group.addTask {
                    await record.trigger?.stop()
                    await self.undeploy(record)
                    await self.closeConnection(of: record)
                }
            }
        }
        workloads.removeAll()
    }

    // MARK: Exits and restarts

    private func handleAgentEvent(_ message: NATSMessage) async {
        let tokens = message.subject.split(separator: ".")
        guard tokens.count == 4 else { return }
        let agentID = String(tokens[1]), type = String(tokens[3])
        // Only the agent protocol's events are republished under the node's name.
        guard type == AgentVerb.workloadDeployed || type == AgentVerb.workloadUndeployed else { return }
        guard let event = try? JSONDecoder().decode(AgentWorkloadEvent.self, from: Data(message.payload.readableBytesView)),
              let record = workloads[event.workloadID], record.agentID == agentID
        else { return }
        await publishWorkloadEvent(type, record: record, code: event.code, message: event.message)
        if type == AgentVerb.workloadUndeployed {
            await workloadEnded(record, code: event.code, reason: event.message ?? "exited with code \(event.code)")
        }
    }

    private func agentExited(_ agentID: String, status: Int32) async {
        guard let record = workloads.values.first(where: { $0.agentID == agentID }), record.state != .stopping else { return }
        let reason = status < 0 ? "its agent was killed by signal \(-status)" : "its agent exited with code \(status)"
        await publishWorkloadEvent(AgentVerb.workloadUndeployed, record: record, code: status == 0 ? -1 : status,
                                   message: reason)
        await workloadEnded(record, code: status == 0 ? -1 : status, reason: reason)
    }

    /// The workload's process ended on its own (or with its agent).
    private func workloadEnded(_ ended: WorkloadRecord, code: Int32, reason: String) async {
        guard var record = workloads[ended.id], record.agentID != nil, record.agentID == ended.agentID,
              record.state != .stopping
        else { return }
        // Claim this end before any await: the agent's exit and its workload_undeployed event
        // both report it, and only one of them may act.
        let agentID = record.agentID
        record.agentID = nil
        record.trigger?.route(to: nil)
        let restart = record.essential && code != 0 && !context.isLameDuck() && !stopping
        record.state = restart ? .restarting : .stopping
        workloads[record.id] = record
        if let agentID { await release(agentID) }
        guard restart else {
            await record.trigger?.stop()
            workloads[record.id] = nil
            routes.forget(workloadID: record.id)
            await closeConnection(of: record)
            logger.info("workload ended", metadata: ["workload": "\(record.name)", "id": "\(record.id)", "reason": "\(reason)"])
            return
        }
        let ranFor = Date().timeIntervalSince(record.startedAt)
        record.failures = ranFor >= Double(RestartBackoff.healthyRun.components.seconds) ? 1 : record.failures + 1
        record.restarts += 1
        record.state = .restarting
        workloads[record.id] = record
        let delay = RestartBackoff.delay(afterFailures: record.failures)
        logger.warning("essential workload ended; restarting", metadata: [
            "workload": "\(record.name)", "id": "\(record.id)", "reason": "\(reason)", "delay": "\(delay)",
            "restarts": "\(record.restarts)",
        ])
        await publishEvent(NexEventType.workloadRestarted, namespace: record.namespace, source: "\(nodeID)-\(record.id)",
                           WorkloadRestartedEvent(workloadName: record.name, workloadID: record.id, restarts: record.restarts,
                                                  delayMilliseconds: Int(delay.components.seconds * 1000), reason: reason))
        let id = record.id
        Task {
            try? await Task.sleep(for: delay)
            await self.restart(id)
        }
    }

    private func restart(_ id: String) async {
        guard let record = workloads[id], record.state == .restarting else { return }
        if context.isLameDuck() || stopping {
            workloads[id] = nil
            routes.forget(workloadID: id)
            await closeConnection(of: record)
            return
        }
        do {
            _ = try await startInAgent(record)
        } catch {
            logger.error("restart failed", metadata: ["workload": "\(record.name)", "id": "\(id)", "error": "\(error)"])
            await workloadEnded(record, code: -1, reason: "restart failed: \(error)")
        }
    }

    // MARK: Events

    private func publishWorkloadEvent(_ type: String, record: WorkloadRecord, code: Int32, message: String?) async {
        await publishEvent(type, namespace: record.namespace, source: "\(nodeID)-\(record.id)",
                           WorkloadStatusEvent(workloadName: record.name, workloadID: record.id, namespace: record.namespace,
                                               code: Int(code), message: message))
    }

    private func publishEvent<T: Codable & Sendable>(_ type: String, namespace: String, source: String, _ data: T) async {
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
        workloads.values.filter { $0.namespace == namespace }.sorted { $0.startedAt < $1.startedAt }.map { record in
            let uptime = Uptime.format(seconds: Int(Date().timeIntervalSince(record.startedAt)))
            // Functions: the time spent running invocations; services: uptime (as Nex 0.2).
            let runtime = record.trigger.map { Self.formatNanoseconds($0.runtimeNanoseconds) } ?? uptime
            return MachineSummary(
                id: record.id, healthy: record.state == .running, uptime: uptime, namespace: record.namespace,
                workload: .init(name: record.name, description: record.description, runtime: runtime,
                                type: record.type.rawValue, hash: record.hash),
                state: record.state.rawValue, restarts: record.restarts, limitsApplied: record.limitsApplied,
                logLinesDropped: routes.droppedLines(of: record.id))
        }
    }

    /// `850µs`, `12.3ms`, `4.56s`.
    static func formatNanoseconds(_ nanos: UInt64) -> String {
        if nanos < 1_000_000 { return "\(nanos / 1000)µs" }
        if nanos < 1_000_000_000 { return "\(nanos / 1_000_000).\(nanos / 100_000 % 10)ms" }
        return "\(nanos / 1_000_000_000).\(String(nanos / 10_000_000 % 100).leftPadded(to: 2))s"
    }

    /// Workloads of `namespace`, optionally only the one with this id or name.
    public func running(namespace: String, matching workload: String?) -> [WorkloadPingResponse.Machine] {
        workloads.values
            .filter { $0.namespace == namespace }
            .filter { workload == nil || $0.id == workload || $0.name == workload }
            .map { WorkloadPingResponse.Machine(id: $0.id, namespace: $0.namespace, name: $0.name, type: $0.type.rawValue) }
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

