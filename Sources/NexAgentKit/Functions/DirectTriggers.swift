#if canImport(Glibc)
import Glibc
#endif
import CProcessSpawn
import Logging
import NATSWire
import NexAgentBus
import NexControl
import NexWorkloads
import NIOCore
import Synchronization

/// A function's triggers served by its agent on a NATS connection of its own: each message
/// goes to the function and the reply straight back to the requester, without the node's hop.
///
/// The node connects the socket (the agent never dials) and signs a user JWT for ``key`` that
/// lets it take only the function's subjects in its queue group and publish only replies
/// (``AgentTriggerSetup``). A later setup replaces the connection: the new one subscribes
/// before the old one unsubscribes and answers what it took. Invocations are reported to the
/// node in batches (``AgentInvocationReport``); a connection that closes on its own is
/// reported as `triggers_lost`.
final class DirectTriggers: Sendable {
    /// The user nkey the node signs JWTs for; its seed never leaves this process.
    let key: NKeyPair
    /// Bounds the invocations under way on all connections, as the node's relay does.
    private let limits = FunctionLimits()

    private let channel: Int32
    private let runner: any FunctionRunner
    private let workload: AgentWorkloadEvent
    private let bus: AgentBusConnection
    private let logger: Logger
    private let inFlight = Atomic<Int>(0)
    private let state = Mutex(State())
    private let reports = Mutex<[AgentInvocationReport.Invocation]>([])

    private struct State {
        var current: Connection?
        var stopped = false
        var reporter: Task<Void, Never>?
        /// Connections being retired after a renewal (awaited by ``stop()``); each removes
        /// itself when done.
        var retiring: [Int: Task<Void, Never>] = [:]
        var nextRetirement = 0
        /// Setups run one at a time: each takes the next socket from the channel.
        var settingUp = false
    }

    /// One trigger connection and the loops that serve its subscriptions.
    private final class Connection: Sendable {
        let client: NATSClient
        let subscriptions: [NATSSubscription]
        let loops = Mutex<[Task<Void, Never>]>([])
        /// Replaced or stopped on purpose: its end is not a loss.
        let retired = Atomic(false)
        let lossReported = Atomic(false)

        init(client: NATSClient, subscriptions: [NATSSubscription]) {
            self.client = client
            self.subscriptions = subscriptions
        }
    }

    init(channel: Int32, runner: any FunctionRunner, workload: AgentWorkloadEvent, bus: AgentBusConnection,
         logger: Logger) throws {
        self.key = try NKeyPair.generate(.user)
        self.channel = channel
        self.runner = runner
        self.workload = workload
        self.bus = bus
        self.logger = logger
    }

    /// Takes the socket the node sent, logs in with the setup's JWT, subscribes, answers, and
    /// then retires the connection it replaces (in the background: its calls under way may take
    /// as long as a function may run).
    func serve(_ setup: AgentTriggerSetup) async -> AgentTriggerSetupResponse {
        let refusal = state.withLock { s -> String? in
            if s.stopped { return "the function is stopping" }
            if s.settingUp { return "another trigger setup is under way" }
            s.settingUp = true
            return nil
        }
        if let refusal { return AgentTriggerSetupResponse(serving: false, message: refusal) }
        defer { state.withLock { $0.settingUp = false } }
        let connection: Connection
        do {
            connection = try await connect(setup)
        } catch {
            logger.warning("cannot serve triggers directly", metadata: ["server": "\(setup.server)", "error": "\(error)"])
            return AgentTriggerSetupResponse(serving: false, message: "\(error)")
        }
        let (replaced, stopped) = state.withLock { s -> (Connection?, Bool) in
            if s.stopped { return (nil, true) }
            defer { s.current = connection }
            if s.reporter == nil {
                s.reporter = Task { [self] in
                    while (try? await Task.sleep(for: .milliseconds(100))) != nil { await sendReports() }
                }
            }
            return (s.current, false)
        }
        if stopped {
            await retire(connection)
            return AgentTriggerSetupResponse(serving: false, message: "the function is stopping")
        }
        if let replaced {
            state.withLock { s in
                let id = s.nextRetirement
                s.nextRetirement += 1
                s.retiring[id] = Task {
                    await self.retire(replaced)
                    self.state.withLock { _ = $0.retiring.removeValue(forKey: id) }
                }
            }
        }
        logger.debug("serving triggers directly", metadata: ["server": "\(setup.server)", "subjects": "\(setup.subjects)"])
        return AgentTriggerSetupResponse(serving: true, message: "serving \(setup.subjects.count) trigger subjects")
    }

    /// Stops taking messages, answers those taken, and sends the last report.
    func stop() async {
        let (current, reporter, retiring) = state.withLock { s in
            s.stopped = true
            defer { s.current = nil; s.reporter = nil }
            return (s.current, s.reporter, Array(s.retiring.values))
        }
        if let current { await retire(current) }
        for task in retiring { await task.value }
        reporter?.cancel()
        await reporter?.value
        await sendReports()
    }

    private func connect(_ setup: AgentTriggerSetup) async throws -> Connection {
        // The node sends the socket before the request: it is there already, and this runs on
        // the bus connection's event loop, which must not wait.
        var descriptor: Int32 = -1
        let received = nex_receive_descriptor(channel, 0, &descriptor)
        guard received == 0 else {
            throw DirectTriggerError("no socket from the node on the socket channel: \(String(cString: strerror(received)))")
        }
        // A socket left over from a setup that never reached this point is older than the one
        // this setup sent: use the newest.
        var newer: Int32 = -1
        while nex_receive_descriptor(channel, 0, &newer) == 0 {
            close(descriptor)
            descriptor = newer
        }
        var options = NATSClientOptions(servers: [setup.server])
        options.connectedSocket = descriptor  // the client owns it from here, even if connecting fails
        options.allowReconnect = false
        options.auth = .jwt(setup.jwt, seed: key.seed)
        options.name = "nex-agent \(workload.workloadName) triggers"
        options.flushTimeout = .seconds(3)
        let client = try NATSClient(options: options)
        do {
            try await client.connect()
            var subscriptions: [NATSSubscription] = []
            for subject in setup.subjects {
                subscriptions.append(try await client.subscribe(to: subject, queue: setup.queue))
            }
            try await client.flush()
            let connection = Connection(client: client, subscriptions: subscriptions)
            for subscription in subscriptions {
                let loop = Task(executorPreference: client.taskExecutor) { [self] in
                    await withDiscardingTaskGroup { group in
                        for await message in subscription {
                            // Invocations run concurrently: a slow one must not hold up the next.
                            let running = inFlight.add(1, ordering: .relaxed).newValue
                            group.addTask {
                                defer { self.inFlight.subtract(1, ordering: .relaxed) }
                                await self.invoke(message, on: client, busy: running > self.limits.invocationsInFlight)
                            }
                        }
                    }
                    await ended(connection)
                }
                connection.loops.withLock { $0.append(loop) }
            }
            return connection
        } catch {
            await client.close()
            throw error
        }
    }

    /// One invocation, answered on `client`, and recorded for the node.
    private func invoke(_ message: NATSMessage, on client: NATSClient, busy: Bool) async {
        let started = ContinuousClock.now
        var failure: String?
        if busy {
            failure = limits.busyReason(workload.workloadName)
        } else {
            do {
                let result = try await runner.invoke(subject: message.subject, payload: Array(message.payload.readableBytesView),
                                                     traceParent: message.headers?["traceparent"])
                if let replyTo = message.replyTo { try? await client.publish(ByteBuffer(bytes: result), to: replyTo) }
            } catch {
                failure = error.message
            }
        }
        if let failure, let replyTo = message.replyTo {
            try? await client.publish(ByteBuffer(), to: replyTo, headers: [FunctionHeader.error: failure])
        }
        let elapsed = started.duration(to: .now)
        // The requester got the whole error; the report carries its first KiB.
        let invocation = AgentInvocationReport.Invocation(
            subject: message.subject,
            elapsedNanoseconds: UInt64(max(elapsed.nanoseconds, 0)),
            error: failure.map { String(decoding: $0.utf8.prefix(1024), as: UTF8.self) })
        let full = reports.withLock { pending in
            pending.append(invocation)
            return pending.count >= AgentInvocationReport.maximumCount
        }
        if full { await sendReports() }
    }

    /// Sends what is waiting, in batches of at most ``AgentInvocationReport/maximumCount``.
    private func sendReports() async {
        while true {
            let batch = reports.withLock { pending -> [AgentInvocationReport.Invocation] in
                let count = min(pending.count, AgentInvocationReport.maximumCount)
                defer { pending.removeFirst(count) }
                return Array(pending.prefix(count))
            }
            guard !batch.isEmpty else { return }
            do {
                try await bus.publishInvocations(AgentInvocationReport(invocations: batch))
            } catch {
                logger.warning("cannot report invocations", metadata: ["count": "\(batch.count)", "error": "\(error)"])
                return
            }
        }
    }

    /// Unsubscribes without dropping what the server already routed here, waits until what the
    /// connection took is answered, and closes it.
    private func retire(_ connection: Connection) async {
        connection.retired.store(true, ordering: .relaxed)
        for subscription in connection.subscriptions { try? await subscription.drain() }
        for loop in connection.loops.withLock({ $0 }) { await loop.value }
        await connection.client.close()
    }

    /// A serving loop ended: unless the connection was retired, it closed on its own (the
    /// server went, or the JWT expired), and the node is told once.
    private func ended(_ connection: Connection) async {
        guard !connection.retired.load(ordering: .relaxed),
              !connection.lossReported.exchange(true, ordering: .relaxed) else { return }
        state.withLock { s in if s.current === connection { s.current = nil } }
        logger.warning("the trigger connection closed; the node answers until it sets up another")
        await connection.client.close()
        try? await bus.publishEvent(AgentVerb.triggersLost, workload)
    }
}

struct DirectTriggerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
