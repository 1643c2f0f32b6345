import NexWorkloads
import FoundationEssentials
import Logging
import NATSWire
import NexAgentBus
import NexControl
import NIOCore
import Synchronization
import Tracing

/// The node's side of one function: its trigger subscriptions (a queue group per workload, so
/// replicas on several nodes share the load), each message handed to the function's agent and
/// the result (or the failure, in `Nex-Function-Error`) sent back to the requester, with a
/// `function_exec_succeeded` / `function_exec_failed` event per invocation.
///
/// With `direct_triggers`, the function's agent serves the subjects itself on a connection of
/// its own (``DirectTriggerSession``); the node then only relays while the agent cannot (until
/// it is set up, after a failure, during a restart), and turns the agent's reports into the
/// same events and metrics (``record(_:)``).
final class FunctionTrigger: Sendable {
    struct Target: Sendable {
        let namespace: String
        let workloadName: String
        let workloadID: String
        let nodeID: String
    }

    private let target: Target
    /// Where trigger messages arrive and replies go.
    private let connection: NATSClient
    /// Events are published here (the control connection).
    private let control: NATSClient
    private let bus: BusLink
    private let agentID = Mutex<String?>(nil)
    private let subjects = Mutex<[String]>([])
    /// The node's own (relaying) subscriptions and their loops; empty while the agent serves.
    private let relaying = Mutex<(subscriptions: [NATSSubscription], tasks: [Task<Void, Never>])>(([], []))
    private let direct: DirectTriggerSession?
    /// Reported invocations taken per second (``record(_:from:)``).
    static let reportedPerSecond = 50_000
    private let reportBudget = Mutex(InvocationBudget(perSecond: FunctionTrigger.reportedPerSecond))
    private let reportWarning = Atomic(false)
    private let timeout: Duration
    private let logger: Logger
    /// Cumulative execution time (ns) reported by the agent.
    private let runtime = Mutex<UInt64>(0)
    private let ownsConnection: Bool
    /// Invocations under way (bounded by ``FunctionLimits/invocationsInFlight``).
    private let inFlight = Atomic<Int>(0)
    private let limits = FunctionLimits()
    private let metrics: FunctionMetrics?
    private let metricsReleased = Atomic(false)
    /// A tracer is bootstrapped (`--traces`): invocations get spans.
    private let tracing = NexTracing.isOn

    /// `credentials`: the agent may serve the subjects itself (`direct_triggers`; never on a
    /// deploy's own trigger connection, nor while invocations are traced by the node).
    init(target: Target, subjects: [String], connection: NATSClient, ownsConnection: Bool, control: NATSClient,
         bus: BusLink, timeout: Duration, logger: Logger, metrics: FunctionMetrics? = nil,
         credentials: TriggerCredentials? = nil) {
        self.metrics = metrics
        self.subjects.withLock { $0 = subjects }
        self.target = target
        self.connection = connection
        self.ownsConnection = ownsConnection
        self.control = control
        self.bus = bus
        self.timeout = timeout
        self.logger = logger
        let queue = Self.queue(target)
        direct = credentials.flatMap { credentials in
            guard !ownsConnection, !NexTracing.isOn, TriggerCredentials.canServe(subjects) else { return nil }
            return DirectTriggerSession(credentials: credentials, connection: connection, bus: bus, subjects: subjects,
                                        queue: queue, name: "\(target.namespace)/\(target.workloadName)", logger: logger)
        }
        direct?.relay { [weak self] on in await self?.relay(on) }
    }

    /// `nex:<ns>:<workload>`. ':' appears in neither namespaces nor workload names, so two
    /// workloads never share a group.
    static func queue(_ target: Target) -> String { "nex:\(target.namespace):\(target.workloadName)" }

    var runtimeNanoseconds: UInt64 { runtime.withLock { $0 } }

    /// The agent that runs the function now (changes if it is restarted); `direct` when that
    /// agent can serve the triggers itself.
    func route(to agentID: String?, direct agent: DirectTriggerAgent? = nil) {
        self.agentID.withLock { $0 = agentID }
        direct?.send(.agent(agentID == nil ? nil : agent))
    }

    /// Subscribes every trigger subject with the function's queue group; with direct triggers,
    /// the agent is then set up to take over.
    func start() async throws {
        try await subscribeRelay()
        direct?.start()
    }

    /// The agent's own trigger connection closed (`triggers_lost`).
    func directConnectionLost(agentID: String) {
        direct?.send(.lost(agentID: agentID))
    }

    private func relay(_ on: Bool) async {
        if on {
            do {
                try await subscribeRelay()
            } catch {
                logger.error("cannot subscribe the trigger subjects", metadata: ["function": "\(target.workloadName)",
                                                                               "error": "\(error)"])
            }
        } else {
            await unsubscribeRelay()
        }
    }

    /// Subscribes every trigger subject not yet subscribed with the queue group.
    private func subscribeRelay() async throws {
        let queue = Self.queue(target)
        let held = Set(relaying.withLock { $0.subscriptions.map(\.subject) })
        for subject in subjects.withLock({ $0 }) where !held.contains(subject) {
            let subscription = try await connection.subscribe(to: subject, queue: queue)
            relaying.withLock { $0.subscriptions.append(subscription) }
            // On the bus connection's event loop: the hop to the agent then needs no thread switch.
            // The subscription's task is the trigger's: stop() (the workload manager calls it
            // before the function's agent is undeployed, and when the node stops) ends it. Each
            // invocation is a task of its own on purpose: one under way still answers its
            // requester after a stop, and ends within `timeout` (the agent request's bound).
            let executor = bus.taskExecutor
            let task = Task(executorPreference: executor) { [self] in
                for await message in subscription {
                    // Invocations run concurrently: a slow one must not hold up the next.
                    let running = inFlight.add(1, ordering: .relaxed).newValue
                    Task(executorPreference: executor) {
                        defer { self.inFlight.subtract(1, ordering: .relaxed) }
                        if running > self.limits.invocationsInFlight {
                            await self.fail(message, reason: self.limits.busyReason(self.target.workloadName))
                        } else {
                            await self.invoke(message)
                        }
                    }
                }
            }
            relaying.withLock { $0.tasks.append(task) }
        }
        try await connection.flush()
    }

    /// Ends the node's own subscriptions without dropping what the server already routed to
    /// them (each is drained); invocations under way still answer.
    private func unsubscribeRelay() async {
        let (subscriptions, tasks) = relaying.withLock { value in defer { value = ([], []) }; return value }
        for subscription in subscriptions { try? await subscription.drain() }
        for task in tasks { await task.value }
    }

    /// Invocations the agent answered on its own connection: counted, timed and announced
    /// like those the node relays. The report is the agent's word: taken only from the agent
    /// the function runs on, with direct triggers; entries for subjects that are not the
    /// function's are dropped, error texts cut to 1 KiB, and at most ``reportedPerSecond``
    /// invocations a second are taken (a burst of as many), so an agent cannot make the node
    /// publish without bound.
    func record(_ report: AgentInvocationReport, from agent: String) async {
        guard direct != nil, agentID.withLock({ $0 }) == agent else { return }
        let patterns = subjects.withLock { $0 }
        let admitted = reportBudget.withLock { $0.take(report.invocations.count, now: .now) }
        if admitted < report.invocations.count, !reportWarning.exchange(true, ordering: .relaxed) {
            logger.warning("the function's agent reports more invocations than a function can serve; the rest are dropped",
                           metadata: ["function": "\(target.workloadName)", "per_second": "\(Self.reportedPerSecond)"])
        }
        for invocation in report.invocations.prefix(admitted) {
            guard patterns.contains(where: { SubjectPattern.matches($0, invocation.subject) }) else { continue }
            addRuntime(invocation.elapsedNanoseconds)
            if let error = invocation.error {
                await recordFailure(subject: invocation.subject, reason: String(decoding: error.utf8.prefix(1024), as: UTF8.self))
            } else {
                metrics?.succeeded(after: .nanoseconds(Int64(clamping: invocation.elapsedNanoseconds)))
                await publish(.functionExecSucceeded, FunctionEventJSON.succeeded(source: eventSource, FunctionExecSucceededEvent(
                    workloadName: target.workloadName, triggerSubject: invocation.subject,
                    elapsedNanos: invocation.elapsedNanoseconds, namespace: target.namespace)))
            }
        }
    }

    /// One invocation, in a server span (a child of the requester's, when its message carries
    /// `traceparent`) whose context travels to the agent, and from it to host services.
    private func invoke(_ message: NATSMessage) async {
        // No tracer bootstrapped: no span, no header work on the hot path.
        let span = tracing ? InstrumentationSystem.tracer.startSpan(
            "function \(target.workloadName)", context: .extracted(from: message), ofKind: .server) : nil
        defer { span?.end() }
        span?.attributes["messaging.destination.name"] = message.subject
        span?.attributes["nex.workload_id"] = target.workloadID
        span?.attributes["nex.namespace"] = target.namespace
        guard let agentID = agentID.withLock({ $0 }) else {
            span?.setStatus(SpanStatus(code: .error, message: "not running"))
            await fail(message, reason: "function \(target.workloadName) is not running (restarting or stopping)")
            return
        }
        let started = ContinuousClock.now
        var headers: NATSHeaders = [AgentTriggerHeader.subject: message.subject]
        if let span { InstrumentationSystem.instrument.inject(span.context, into: &headers, using: NATSHeadersInjector()) }
        let reply: NATSMessage
        do {
            reply = try await bus.request(message.payload, to: AgentBusSubject.toAgent(agentID, AgentVerb.trigger),
                                          headers: headers, timeout: timeout)
        } catch {
            span?.setStatus(SpanStatus(code: .error, message: "agent did not answer"))
            await fail(message, reason: "agent did not answer: \(error)")
            return
        }
        if let failure = reply.headers?[AgentTriggerHeader.error] {
            span?.setStatus(SpanStatus(code: .error, message: failure))
            await fail(message, reason: failure)
            return
        }
        let elapsed = started.duration(to: .now)
        metrics?.succeeded(after: elapsed)
        let measured = UInt64(elapsed.nanoseconds)
        let nanos = reply.headers?[AgentTriggerHeader.runtime].flatMap { UInt64($0) } ?? measured
        addRuntime(nanos)
        if let replyTo = message.replyTo {
            try? await connection.publish(reply.payload, to: replyTo)
        }
        await publish(.functionExecSucceeded, FunctionEventJSON.succeeded(source: eventSource, FunctionExecSucceededEvent(
            workloadName: target.workloadName, triggerSubject: message.subject, elapsedNanos: nanos,
            namespace: target.namespace)))
    }

    /// Answers the requester with an empty body and the reason in `Nex-Function-Error`.
    private func fail(_ message: NATSMessage, reason: String) async {
        if let replyTo = message.replyTo {
            try? await connection.publish(ByteBuffer(), to: replyTo, headers: [FunctionHeader.error: reason])
        }
        await recordFailure(subject: message.subject, reason: reason)
    }

    private func recordFailure(subject: String, reason: String) async {
        metrics?.failedOnce()
        await publish(.functionExecFailed, FunctionEventJSON.failed(source: eventSource, FunctionExecFailedEvent(
            workloadName: target.workloadName, triggerSubject: subject, namespace: target.namespace, error: reason)))
    }

    /// Adds to the cumulative run time, saturating (the figures are the agent's).
    private func addRuntime(_ nanoseconds: UInt64) {
        runtime.withLock { total in
            let (sum, overflow) = total.addingReportingOverflow(nanoseconds)
            total = overflow ? .max : sum
        }
    }

    private var eventSource: String { "\(target.nodeID)-\(target.workloadID)" }

    private func publish(_ type: NexEventType, _ body: [UInt8]) async {
        try? await control.publish(ByteBuffer(bytes: body), to: NexSubject.event(namespace: target.namespace, type: type))
    }

    /// Unsubscribes; invocations under way still answer (and are still counted, in series
    /// removed once no trigger of the function is left).
    func stop() async {
        await direct?.stop()
        if !metricsReleased.exchange(true, ordering: .relaxed) { metrics?.release() }
        await unsubscribeRelay()
        if ownsConnection { await connection.close() }
    }
}

/// A token bucket of invocations: `perSecond` a second, a burst of as many.
struct InvocationBudget {
    let perSecond: Int
    private var tokens: Double
    private var last: ContinuousClock.Instant?

    init(perSecond: Int) {
        self.perSecond = perSecond
        tokens = Double(perSecond)
    }

    /// Takes up to `count`; returns how many were taken.
    mutating func take(_ count: Int, now: ContinuousClock.Instant) -> Int {
        if let last {
            let elapsed = last.duration(to: now)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            tokens = min(Double(perSecond), tokens + seconds * Double(perSecond))
        }
        last = now
        let taken = min(count, Int(tokens))
        tokens -= Double(taken)
        return taken
    }
}
