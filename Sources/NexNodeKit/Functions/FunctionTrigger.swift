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
    private let subscriptions = Mutex<[NATSSubscription]>([])
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let timeout: Duration
    private let logger: Logger
    /// Cumulative execution time (ns) reported by the agent.
    private let runtime = Mutex<UInt64>(0)
    private let ownsConnection: Bool
    /// Invocations under way; past ``maxInFlight`` new messages are answered "busy" at once,
    /// so a flood against a slow function cannot grow the node's memory without bound.
    private let inFlight = Atomic<Int>(0)
    static let maxInFlight = 1024
    private let metrics: FunctionMetrics?
    private let metricsReleased = Atomic(false)
    /// A tracer is bootstrapped (`--traces`): invocations get spans.
    private let tracing = NexTracing.isOn

    init(target: Target, connection: NATSClient, ownsConnection: Bool, control: NATSClient, bus: BusLink,
         timeout: Duration, logger: Logger, metrics: FunctionMetrics? = nil) {
        self.metrics = metrics
        self.target = target
        self.connection = connection
        self.ownsConnection = ownsConnection
        self.control = control
        self.bus = bus
        self.timeout = timeout
        self.logger = logger
    }

    var runtimeNanoseconds: UInt64 { runtime.withLock { $0 } }

    /// The agent that runs the function now (changes if it is redeployed).
    func route(to agentID: String?) { self.agentID.withLock { $0 = agentID } }

    /// Subscribes every trigger subject with the queue group `nex:<ns>:<workload>`.
    func start(subjects: [String]) async throws {
        // ':' appears in neither namespaces nor workload names, so two workloads never share a group.
        let queue = "nex:\(target.namespace):\(target.workloadName)"
        for subject in subjects {
            let subscription = try await connection.subscribe(to: subject, queue: queue)
            subscriptions.withLock { $0.append(subscription) }
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
                        if running > Self.maxInFlight {
                            await self.fail(message, reason: "function \(self.target.workloadName) is busy: \(Self.maxInFlight) invocations under way")
                        } else {
                            await self.invoke(message)
                        }
                    }
                }
            }
            tasks.withLock { $0.append(task) }
        }
        try await connection.flush()
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
        runtime.withLock { $0 += nanos }
        if let replyTo = message.replyTo {
            try? await connection.publish(reply.payload, to: replyTo)
        }
        await publish(.functionExecSucceeded, FunctionEventJSON.succeeded(source: eventSource, FunctionExecSucceededEvent(
            workloadName: target.workloadName, triggerSubject: message.subject, elapsedNanos: nanos,
            namespace: target.namespace)))
    }

    /// Answers the requester with an empty body and the reason in `Nex-Function-Error`.
    private func fail(_ message: NATSMessage, reason: String) async {
        metrics?.failedOnce()
        if let replyTo = message.replyTo {
            try? await connection.publish(ByteBuffer(), to: replyTo, headers: [FunctionHeader.error: reason])
        }
        await publish(.functionExecFailed, FunctionEventJSON.failed(source: eventSource, FunctionExecFailedEvent(
            workloadName: target.workloadName, triggerSubject: message.subject, namespace: target.namespace,
            error: reason)))
    }

    private var eventSource: String { "\(target.nodeID)-\(target.workloadID)" }

    private func publish(_ type: NexEventType, _ body: [UInt8]) async {
        try? await control.publish(ByteBuffer(bytes: body), to: NexSubject.event(namespace: target.namespace, type: type))
    }

    /// Unsubscribes; invocations under way still answer (and are still counted, in series
    /// removed once no trigger of the function is left).
    func stop() async {
        if !metricsReleased.exchange(true, ordering: .relaxed) { metrics?.release() }
        for subscription in subscriptions.withLock({ value in defer { value = [] }; return value }) {
            try? await subscription.unsubscribe()
        }
        for task in tasks.withLock({ value in defer { value = [] }; return value }) { task.cancel() }
        if ownsConnection { await connection.close() }
    }
}
