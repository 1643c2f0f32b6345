import FoundationEssentials
import NATSWire
import NIOCore
import Synchronization

/// The agent's side of the node<->agent bus: a NATS connection as agent `<id>`.
///
/// It authenticates with the agent's nkey seed, uses the inbox prefix the bus allows it
/// (``AgentEnvironment/inboxPrefix(agentID:)``), subscribes only `agentint.<id>.>`, and
/// publishes only under `hostint.<id>.`. Transport only: what to do with a deploy is the
/// ``AgentRequestHandler``'s business.
///
/// ```swift
/// let bus = try AgentBusConnection(configuration: .init(busURL: url, agentID: id, nkeySeed: seed))
/// try await bus.connect()
/// try await bus.handshake(AgentHandshake(id: id, pid: getpid(), version: "0.1.0", startTime: now))
/// await bus.serve(handler)    // until stopServing()
/// ```
public final class AgentBusConnection: Sendable {
    /// Where and how to connect.
    public struct Configuration: Sendable {
        /// `nats://127.0.0.1:<port>`.
        public var busURL: String
        public var agentID: String
        /// The agent's user nkey seed (`SU...`).
        public var nkeySeed: String
        /// How long one handshake attempt waits for the node's answer.
        public var handshakeTimeout: Duration
        /// Attempts before the handshake fails (on no responders or a timeout).
        public var handshakeAttempts: Int
        /// Client settings beyond URL, credentials and inbox (logger, timeouts, a connected
        /// socket); nil for defaults.
        public var clientOptions: NATSClientOptions?

        public init(busURL: String, agentID: String, nkeySeed: String, handshakeTimeout: Duration = .milliseconds(500),
                    handshakeAttempts: Int = 10, clientOptions: NATSClientOptions? = nil) {
            self.busURL = busURL
            self.agentID = agentID
            self.nkeySeed = nkeySeed
            self.handshakeTimeout = handshakeTimeout
            self.handshakeAttempts = handshakeAttempts
            self.clientOptions = clientOptions
        }
    }

    public let configuration: Configuration
    /// The NATS connection (for flushing, events, tests).
    public let client: NATSClient
    public var agentID: String { configuration.agentID }

    private let subscription = Mutex<NATSSubscription?>(nil)
    private let logsSubject: String
    private let stdoutHeaders: NATSHeaders
    private let stderrHeaders: NATSHeaders

    /// Prepares the connection; nothing is sent before ``connect()``.
    public init(configuration: Configuration) throws {
        self.configuration = configuration
        var options = configuration.clientOptions ?? NATSClientOptions()
        options.servers = [configuration.busURL]
        options.auth = .nkey(seed: configuration.nkeySeed)
        options.inboxPrefix = AgentEnvironment.inboxPrefix(agentID: configuration.agentID)
        if options.name == nil { options.name = "nex-agent \(configuration.agentID)" }
        client = try NATSClient(options: options)
        logsSubject = AgentBusSubject.toHost(configuration.agentID, AgentVerb.logs)
        stdoutHeaders = [AgentLogHeader.stream: "stdout"]
        stderrHeaders = [AgentLogHeader.stream: "stderr"]
    }

    /// Connects and subscribes `agentint.<id>.>`; returns once the server has the subscription.
    public func connect() async throws {
        try await client.connect()
        let subscription = try await client.subscribe(to: AgentBusSubject.agentSubscription(agentID))
        self.subscription.withLock { $0 = subscription }
        try await client.flush()
    }

    /// Requests `hostint.<id>.handshake` until the node answers, retrying on no responders and
    /// timeouts up to ``Configuration/handshakeAttempts`` times.
    public func handshake(_ handshake: AgentHandshake) async throws {
        let subject = AgentBusSubject.toHost(agentID, AgentVerb.handshake)
        let body = try JSONEncoder().encode(handshake)
        let timeout = configuration.handshakeTimeout
        var attempt = 0
        while true {
            attempt += 1
            do {
                _ = try await client.request(Array(body), to: subject, timeout: timeout)
                return
            } catch let error as NATSError {
                switch error.code {
                case .noResponders, .timeout:
                    guard attempt < configuration.handshakeAttempts else {
                        throw AgentConnectionError.handshakeFailed(subject: subject, attempts: attempt, reason: error.description)
                    }
                    try await Task.sleep(for: .milliseconds(50 * attempt))
                default:
                    throw AgentConnectionError.handshakeFailed(subject: subject, attempts: attempt, reason: error.description)
                }
            }
        }
    }

    /// Hands each request on `agentint.<id>.<verb>` to `handler` (each in its own child task)
    /// and sends its answer to the request's reply subject. Returns after ``stopServing()``
    /// (or when the connection closes), once every request taken has been answered.
    public func serve(_ handler: some AgentRequestHandler) async {
        guard let subscription = subscription.withLock({ $0 }) else { return }
        let prefix = "agentint.\(agentID)."
        // On the connection's event loop: taking a request and answering it cross no thread.
        await withTaskExecutorPreference(client.taskExecutor) {
            // Discarding: a plain task group keeps every finished child until it is awaited,
            // which grew a relayed function's agent by ~6.5 KB per invocation (soak-bench).
            await withDiscardingTaskGroup { group in
                for await message in subscription {
                    guard message.subject.hasPrefix(prefix) else { continue }
                    let verb = String(message.subject.dropFirst(prefix.count))
                    group.addTask {
                        await self.answer(verb: verb, message: message, handler: handler)
                    }
                }
            }
        }
    }

    private func answer(verb: String, message: NATSMessage, handler: some AgentRequestHandler) async {
        if verb == AgentVerb.trigger {
            await answerTrigger(message, handler: handler)
            return
        }
        let reply: Data
        do {
            switch verb {
            case AgentVerb.deploy:
                let response: AgentDeployResponse
                do {
                    let request = try JSONDecoder().decode(AgentDeployRequest.self, from: Data(message.payload.readableBytesView))
                    response = await handler.deploy(request)
                } catch {
                    response = AgentDeployResponse(
                        accepted: false, message: "malformed deploy request on \(message.subject): \(error)")
                }
                reply = try JSONEncoder().encode(response)
            case AgentVerb.undeploy:
                reply = try JSONEncoder().encode(await handler.undeploy())
            case AgentVerb.triggers:
                let response: AgentTriggerSetupResponse
                do {
                    let setup = try JSONDecoder().decode(AgentTriggerSetup.self, from: Data(message.payload.readableBytesView))
                    response = await handler.serveTriggers(setup)
                } catch {
                    response = AgentTriggerSetupResponse(
                        serving: false, message: "malformed trigger setup on \(message.subject): \(error)")
                }
                reply = try JSONEncoder().encode(response)
            case AgentVerb.ping:
                reply = try JSONEncoder().encode(await handler.ping())
            default:
                reply = Data(#"{"error":"agent \#(agentID) does not handle '\#(verb)'"}"#.utf8)
            }
        } catch {
            reply = Data(#"{"error":"agent \#(agentID) could not encode its answer to '\#(verb)'"}"#.utf8)
        }
        guard let replyTo = message.replyTo else { return }
        try? await client.publish(Array(reply), to: replyTo)
    }

    /// Runs one invocation and replies with its result, or with an empty body and the
    /// `Nex-Function-Error` header saying what failed.
    private func answerTrigger(_ message: NATSMessage, handler: some AgentRequestHandler) async {
        let result: AgentTriggerResult
        if let subject = message.headers?[AgentTriggerHeader.subject] {
            result = await handler.trigger(subject: subject, payload: message.payload,
                                           traceParent: message.headers?["traceparent"])
        } else {
            result = .failed("trigger request without the \(AgentTriggerHeader.subject) header")
        }
        guard let replyTo = message.replyTo else { return }
        switch result {
        case .reply(let bytes, let runtime):
            try? await client.publish(ByteBuffer(bytes: bytes), to: replyTo,
                                      headers: [AgentTriggerHeader.runtime: String(runtime)])
        case .failed(let reason):
            try? await client.publish(ByteBuffer(), to: replyTo, headers: [AgentTriggerHeader.error: reason])
        }
    }

    /// Stops taking requests (unsubscribes); ``serve(_:)`` returns once those taken are answered.
    public func stopServing() async {
        guard let subscription = subscription.withLock({ value in defer { value = nil }; return value }) else { return }
        try? await subscription.unsubscribe()
    }

    /// Publishes output lines (none may hold `\n`) to `hostint.<id>.logs`, joined by `\n` in as
    /// few messages as the bus's payload limit allows, their stream (`stdout`/`stderr`) in the
    /// `x-nex-log-stream` header.
    public func publishLogs(_ lines: [ByteBuffer], stream: String) async throws {
        guard !lines.isEmpty else { return }
        let headers = stream == "stdout" ? stdoutHeaders : stream == "stderr" ? stderrHeaders : [AgentLogHeader.stream: stream]
        let limit = max(1, min(client.serverInfo?.maxPayload ?? 1_048_576, AgentLogBatch.maximumBytes) - 1024)
        var batch = ByteBuffer()
        var count = 0
        for line in lines {
            if count > 0, batch.readableBytes + 1 + line.readableBytes > limit || count == AgentLogBatch.maximumLines {
                try await client.publish(batch, to: logsSubject, headers: headers)
                batch.clear()
                count = 0
            }
            if count > 0 { batch.writeInteger(UInt8(ascii: "\n")) }
            var line = line
            batch.writeBuffer(&line)
            count += 1
        }
        try await client.publish(batch, to: logsSubject, headers: headers)
    }

    /// Publishes the agent's own notice that `total` output lines were dropped so far, as a
    /// stderr line of the workload's log stream carrying ``AgentLogHeader/droppedLines``.
    public func publishDroppedLines(_ text: String, total: Int) async throws {
        try await client.publish(ByteBuffer(string: text), to: logsSubject,
                                 headers: [AgentLogHeader.stream: "stderr", AgentLogHeader.droppedLines: String(total)])
    }

    /// Publishes `event` as JSON to `hostint.<id>.events.<type>`.
    public func publishEvent(_ type: String, _ event: AgentWorkloadEvent) async throws {
        let body = try JSONEncoder().encode(event)
        try await client.publish(Array(body), to: AgentBusSubject.toHost(agentID, "\(AgentVerb.events).\(type)"))
    }

    /// Publishes a batch of directly answered invocations to `hostint.<id>.invocations`.
    public func publishInvocations(_ report: AgentInvocationReport) async throws {
        try await client.publish(Array(try JSONEncoder().encode(report)),
                                 to: AgentBusSubject.toHost(agentID, AgentVerb.invocations))
    }

    /// Waits until everything published so far has reached the server.
    public func flush() async throws {
        try await client.flush()
    }

    /// Stops serving, flushes and closes the connection.
    public func close() async {
        await stopServing()
        try? await client.flush()
        await client.close()
    }
}
