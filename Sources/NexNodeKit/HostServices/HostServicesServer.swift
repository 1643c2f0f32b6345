import NexAgentBus
import NexWorkloads
import FoundationEssentials
import Logging
import NATSWire
import NexControl
import NIOCore
import ServiceLifecycle
import Synchronization
import Tracing

/// The node's host services: key-value, object store, messaging and HTTP for functions,
/// served on the agent bus at `hostint.<agent>.rpc.<namespace>.<workload>.<service>.<method>`.
///
/// A request's body is raw bytes and its metadata is in NATS headers (`x-keyvalue-key`,
/// `x-object-name`, `x-subject`, `x-http-url`); every reply carries `x-nex-hs-code`
/// (200, 400, 403, 404, 413, 429, 500, 501, 502, 503, 504) and `x-nex-hs-msg` (`OK` or the reason),
/// and its body is the result.
///
/// Unlike Nex 0.2, the `<namespace>` and `<workload>` tokens are not trusted: the agent id comes
/// from the subject (the bus lets agent `<id>` publish only under `hostint.<id>.`), `resolve`
/// says which workload that agent runs, and a request naming another one is refused with 403.
/// Buckets are named from the resolved workload, never from the request, so a workload
/// cannot reach another's.
///
/// One agent cannot crowd out the others: it has at most
/// ``HostServicesConfiguration/maxCallsInFlightPerAgent`` calls served at once, and a call over
/// that is answered at once with 429 (never queued); the loop that takes requests off the bus
/// connection only counts and starts tasks, so it never waits for a call. Warnings are limited
/// to one per agent per second (``HostServiceWarningLimiter``).
///
/// ```swift
/// let server = HostServicesServer(busConnection: bus, configuration: config, resolve: { id in
///     await workloads.hostServiceScope(agentID: id)
/// }, logger: logger)
/// try await server.start()
/// ...
/// await server.stop()   // waits for the calls under way
/// ```
///
/// In a node it is a `Service`: ``run()`` serves until a graceful shutdown, then ``stop()``s.
public final class HostServicesServer: Service, Sendable {
    public let configuration: HostServicesConfiguration
    let bus: BusLink
    let resolve: @Sendable (_ agentID: String) async -> HostServiceScope?
    let logger: Logger
    private let metrics: NodeMetrics?
    let buckets = HostServiceBuckets()
    let http: HTTPHostService

    private struct State {
        var subscription: BusLinkSubscription?
        var loop: Task<Void, Never>?
        /// Agent id → its calls being served.
        var inFlight: [String: Int] = [:]
        var statistics = HostServicesStatistics()
        var warnings = HostServiceWarningLimiter()
    }

    private let state = Mutex(State())

    /// Calls in flight, the busiest agent's peak, busy answers and warnings so far.
    public var statistics: HostServicesStatistics {
        state.withLock { s in
            var statistics = s.statistics
            statistics.warningsLogged = s.warnings.loggedTotal
            statistics.warningsSuppressed = s.warnings.suppressedTotal
            return statistics
        }
    }

    public init(
        busConnection: BusLink, configuration: HostServicesConfiguration,
        resolve: @escaping @Sendable (_ agentID: String) async -> HostServiceScope?, logger: Logger,
        metrics: NodeMetrics? = nil
    ) {
        self.metrics = metrics
        self.bus = busConnection
        self.configuration = configuration
        self.resolve = resolve
        self.logger = logger
        self.http = HTTPHostService(settings: configuration.http)
    }

    /// Subscribes `hostint.*.rpc.>` on the node's bus link (in place when this returns) and
    /// serves each request in its own task, up to the per-agent cap.
    public func start() async throws {
        guard state.withLock({ $0.subscription == nil }) else { return }
        let subscription = try await bus.subscribe(to: HostServiceSubject.subscription)
        // The serving loop is this server's: stop() (which run() calls at a graceful shutdown)
        // ends it and waits for it and for the calls under way, so it never outlives the
        // server. It is a task of its own so that start()/stop() also serve callers that do
        // not run the server as a Service (tests, embedders).
        let loop = Task {
            await withDiscardingTaskGroup { group in
                for await message in subscription {
                    let agentID = Self.agentID(of: message.subject)
                    guard self.admit(agentID) else {
                        await self.refuseBusy(message, agentID: agentID)
                        continue
                    }
                    group.addTask {
                        await self.handle(message)
                        self.finish(agentID)
                    }
                }
            }
        }
        state.withLock {
            $0.subscription = subscription
            $0.loop = loop
        }
        logger.debug("host services listening", metadata: ["subject": "\(HostServiceSubject.subscription)"])
    }

    /// Serves (``start()`` first) until a graceful shutdown or cancellation, then ``stop()``s.
    public func run() async throws {
        try? await gracefulShutdown()
        await stop()
    }

    /// Unsubscribes, waits for the requests in progress to be answered, and forgets bucket handles.
    public func stop() async {
        let (subscription, loop) = state.withLock { s in
            defer { s.subscription = nil; s.loop = nil }
            return (s.subscription, s.loop)
        }
        subscription?.unsubscribe()
        await loop?.value
        await buckets.removeAll()
    }

    /// Forgets the bucket handles bound on `connection` (call when a workload's connection is closed).
    public func forget(connection: NATSClient) async {
        await buckets.forget(connection)
    }

    // MARK: Admission

    /// The `<agent>` token of `hostint.<agent>.rpc...` (the subscription guarantees the shape).
    static func agentID(of subject: String) -> String {
        let tokens = subject.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        return tokens.count > 1 ? String(tokens[1]) : subject
    }

    /// Counts a call of `agentID` in, unless it already has the most allowed in flight, or the
    /// node does.
    private func admit(_ agentID: String) -> Bool {
        let cap = configuration.maxCallsInFlightPerAgent, nodeCap = configuration.maxCallsInFlight
        return state.withLock { s in
            let current = s.inFlight[agentID, default: 0]
            guard current < cap, s.statistics.inFlight < nodeCap else {
                s.statistics.busy += 1
                return false
            }
            s.inFlight[agentID] = current + 1
            s.statistics.inFlight += 1
            s.statistics.peakInFlightPerAgent = max(s.statistics.peakInFlightPerAgent, current + 1)
            return true
        }
    }

    private func finish(_ agentID: String) {
        state.withLock { s in
            let remaining = s.inFlight[agentID, default: 1] - 1
            s.inFlight[agentID] = remaining > 0 ? remaining : nil
            s.statistics.inFlight -= 1
        }
    }

    /// Answers a call over the cap with 429 at once.
    private func refuseBusy(_ message: NATSMessage, agentID: String) async {
        let cap = configuration.maxCallsInFlightPerAgent
        warn(agentID, "host services busy: calls refused", metadata: [
            "agent": "\(agentID)", "max_calls_in_flight_per_agent": "\(cap)",
            "max_calls_in_flight": "\(configuration.maxCallsInFlight)",
        ])
        guard let replyTo = message.replyTo else { return }
        let own = state.withLock { $0.inFlight[agentID, default: 0] }
        let reply = own >= cap
            ? HostServiceReply(
                code: 429, message: "host services busy: agent \(agentID) has \(cap) calls in flight (max_calls_in_flight_per_agent)")
            : HostServiceReply(
                code: 429, message: "host services busy: the node has \(configuration.maxCallsInFlight) calls in flight (max_calls_in_flight)")
        await send(reply, to: replyTo, request: message.subject)
    }

    /// Logs a warning about `agentID`'s calls unless one was logged for it within the last
    /// second; then it is counted, and the next warning logged says how many were left out.
    func warn(_ agentID: String, _ text: Logger.Message, metadata: Logger.Metadata) {
        guard let suppressed = state.withLock({ $0.warnings.admit(agentID) }) else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.warning(text, metadata: metadata)
    }

    // MARK: Serving

    /// Answers one request on its reply subject; a request without one is dropped.
    func handle(_ message: NATSMessage) async {
        guard let replyTo = message.replyTo else {
            warn(Self.agentID(of: message.subject), "host services request without a reply subject ignored",
                 metadata: ["subject": "\(message.subject)"])
            return
        }
        var span: (any Span)?
        if NexTracing.isOn {
            let parsed = try? HostServiceSubject(parsing: message.subject)
            span = InstrumentationSystem.tracer.startSpan(
                "host service \(parsed.map { "\($0.service).\($0.method)" } ?? "request")", context: .extracted(from: message),
                ofKind: .server)
            if let parsed { span?.attributes["nex.namespace"] = parsed.namespace; span?.attributes["nex.workload_name"] = parsed.workloadName }
        }
        defer { span?.end() }
        let reply = await serve(
            subject: message.subject, headers: message.headers ?? NATSHeaders(), body: Array(message.payload.readableBytesView))
        span?.attributes["nex.host_service.code"] = reply.code
        if reply.code >= 400 { span?.setStatus(SpanStatus(code: .error, message: "\(reply.code) \(reply.message)")) }
        await send(reply, to: replyTo, request: message.subject)
    }

    /// Checks, dispatches and runs one request; every outcome is a reply.
    func serve(subject: String, headers: NATSHeaders, body: [UInt8]) async -> HostServiceReply {
        do {
            let request = try HostServiceSubject(parsing: subject)
            let scope = try await authorize(request)
            return try await dispatch(request, scope: scope, headers: headers, body: body)
        } catch let failure as HostServiceFailure {
            if failure.code >= 500 {
                warn(Self.agentID(of: subject), "host services request failed", metadata: ["subject": "\(subject)", "error": "\(failure)"])
            }
            return HostServiceReply(code: failure.code, message: failure.message, body: failure.body)
        } catch {
            warn(Self.agentID(of: subject), "host services request failed", metadata: ["subject": "\(subject)", "error": "\(error)"])
            return HostServiceReply(code: 500, message: "\(subject): \(error)")
        }
    }

    /// The workload agent `<id>` runs, if it is the one the subject names.
    func authorize(_ request: HostServiceSubject) async throws(HostServiceFailure) -> HostServiceScope {
        guard let scope = await resolve(request.agentID) else {
            throw .forbidden("unknown agent \(request.agentID): it runs no workload on this node")
        }
        guard scope.namespace == request.namespace, scope.workloadName == request.workloadName else {
            throw .forbidden(
                "agent \(request.agentID) runs \(scope.namespace)/\(scope.workloadName), not \(request.namespace)/\(request.workloadName)")
        }
        return scope
    }

    private func dispatch(
        _ request: HostServiceSubject, scope: HostServiceScope, headers: NATSHeaders, body: [UInt8]
    ) async throws -> HostServiceReply {
        let service = request.service
        guard HostServicesConfiguration.knownServices.contains(service) else {
            throw HostServiceFailure.notFound("unknown host service \(service)")
        }
        guard configuration.isEnabled(service) else {
            throw HostServiceFailure.forbidden("host service \(service) is disabled on this node")
        }
        switch service {
        case "kv": return try await serveKeyValue(request.method, scope: scope, headers: headers, body: body)
        case "objectstore": return try await serveObjectStore(request.method, scope: scope, headers: headers, body: body)
        case "messaging": return try await serveMessaging(request.method, scope: scope, headers: headers, body: body)
        default: return try await serveHTTP(request.method, headers: headers, body: body)
        }
    }

    /// Publishes the reply with its `x-nex-hs-code`/`x-nex-hs-msg`; a result too large for the bus
    /// becomes a 413 reply instead.
    private func send(_ reply: HostServiceReply, to replyTo: String, request subject: String) async {
        metrics?.hostCall(service: (try? HostServiceSubject(parsing: subject))?.service ?? "other", code: reply.code)
        do {
            try bus.publish(reply.body, to: replyTo, headers: reply.natsHeaders)
        } catch let error as NATSError where error.code == .payloadTooLarge {
            let failure = HostServiceReply(
                code: 413,
                message: "the result of \(subject) (\(error.size ?? 0) bytes) exceeds the agent bus's max payload of \(error.limit ?? 0) bytes")
            do {
                try bus.publish([], to: replyTo, headers: failure.natsHeaders)
            } catch {
                warn(Self.agentID(of: subject), "cannot answer host services request", metadata: ["subject": "\(subject)", "error": "\(error)"])
            }
        } catch {
            warn(Self.agentID(of: subject), "cannot answer host services request", metadata: ["subject": "\(subject)", "error": "\(error)"])
        }
    }

    // MARK: Helpers for the services

    /// A required header, non-empty.
    static func header(_ name: String, in headers: NATSHeaders) throws(HostServiceFailure) -> String {
        guard let value = headers[name], !value.isEmpty else { throw .missingHeader(name) }
        return value
    }

    static func unknownMethod(_ method: String, of service: String) -> HostServiceFailure {
        .notFound("unknown method \(method) for \(service)")
    }

    static let success = json(["success": true])

    /// Compact JSON with sorted keys and unescaped slashes.
    static func json(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(value))
        } catch {
            return Array("{\"error\":\"cannot encode the result: \(error)\"}".utf8)
        }
    }

    static func ok(_ body: [UInt8], headers: [String: String] = [:]) -> HostServiceReply {
        HostServiceReply(code: 200, message: "OK", headers: headers, body: body)
    }

    /// Failures common to the JetStream-backed services, with the operation named.
    static func storageFailure(_ error: any Error, _ operation: String) -> any Error {
        if error is HostServiceFailure { return error }
        switch error {
        case let error as NATSError where error.code == .payloadTooLarge:
            return HostServiceFailure(
                413, "\(operation): \(error.size ?? 0) bytes exceed the NATS server's max payload of \(error.limit ?? 0) bytes")
        case NATSError.Code.noResponders, NATSError.Code.timeout:
            return HostServiceFailure(503, "\(operation): JetStream is not available on the workload's NATS connection (\(error))")
        case let error as JetStreamError where error.kind == .notAvailable
            || error.errCode == JetStreamError.notEnabled || error.errCode == JetStreamError.notEnabledForAccount:
            return HostServiceFailure(503, "\(operation): JetStream is not available on the workload's NATS connection (\(error))")
        case let error as JetStreamError where error.errCode == 10077:  // maximum bytes exceeded
            return HostServiceFailure(413, "\(operation): the bucket is full (\(error.errorDescription))")
        case KeyValueError.invalidBucketName, ObjectStoreError.invalidBucketName:
            return HostServiceFailure(500, "\(operation): \(error) (check the bucket_name template)")
        default:
            return HostServiceFailure(500, "\(operation) failed: \(error)")
        }
    }
}
