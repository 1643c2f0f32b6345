import FoundationEssentials
import NATSWire
import Tracing
import NIOCore

/// A typed client of the `$NEX` control API over a NATSWire connection: for `nexctl`, and for
/// any Swift program that drives nodes.
///
/// ```swift
/// let nex = NexClient(connection: client)
/// for node in try await nex.pingAll() { print(node.nodeID, node.tags ?? [:]) }
/// ```
///
/// Error envelopes become ``NexControlError/nodeRefused(subject:message:)`` carrying the
/// node's message; NATSWire errors (timeout, no responders) pass through.
public struct NexClient: Sendable {
    /// The connection the requests go out on.
    public let connection: NATSClient
    /// Timeout of single-node requests.
    public var timeout: Duration

    /// A client on `connection`; `timeout` bounds each single-node request.
    public init(connection: NATSClient, timeout: Duration = .seconds(5)) {
        self.connection = connection
        self.timeout = timeout
    }

    /// Pings every node and collects the replies that arrive within `window` (or until
    /// `expecting` replies are in, when you know how many nodes there are).
    public func pingAll(window: Duration = .seconds(1), expecting: Int? = nil) async throws -> [PingResponse] {
        try await gather(PingResponse.self, subject: NexSubject.ping(), body: ByteBuffer(), window: window, expecting: expecting)
    }

    /// Pings one node.
    public func ping(node: String) async throws -> PingResponse {
        try await call(PingResponse.self, subject: NexSubject.ping(node: node), body: ByteBuffer())
    }

    /// Asks which nodes run workloads of `namespace` (optionally one workload by id or name);
    /// replies within `window`, or until `expecting` nodes answered.
    public func workloadPing(namespace: String, workload: String? = nil, window: Duration = .seconds(1),
                             expecting: Int? = nil) async throws -> [WorkloadPingResponse]
    {
        let subject = NexSubject.workloadPing(namespace: namespace, workload: workload)
        return try await gather(WorkloadPingResponse.self, subject: subject, body: ByteBuffer(), window: window,
                                expecting: expecting)
    }

    /// Asks every node whether it matches `request`; only matching nodes answer within `window`
    /// (collecting stops early once `expecting` bids are in).
    public func auction(_ request: AuctionRequest, window: Duration = .seconds(1), expecting: Int? = nil) async throws
        -> [PingResponse]
    {
        try await gather(PingResponse.self, subject: NexSubject.auction, body: try Self.json(request), window: window,
                         expecting: expecting)
    }

    /// Asks `node` about itself and its workloads of `namespace` (`$NEX.INFO.<namespace>.<node>`).
    public func info(namespace: String, node: String) async throws -> InfoResponse {
        try await call(InfoResponse.self, subject: NexSubject.info(namespace: namespace, node: node), body: ByteBuffer())
    }

    /// Sends a prepared deploy request to `node` (`$NEX.DEPLOY.<namespace>.<node>`) and returns the
    /// node's answer; ``deploy(_:namespace:node:issuer:sender:)`` builds the request for you.
    public func deploy(namespace: String, node: String, request: DeployRequest) async throws -> RunResponse {
        try await call(RunResponse.self, subject: NexSubject.deploy(namespace: namespace, node: node), body: try Self.json(request))
    }

    /// Sends a prepared stop request to `node` (`$NEX.STOP.<namespace>.<node>`); the reply comes once
    /// the workload is gone. ``stopWorkload(namespace:node:id:name:issuer:)`` signs the stop JWT for you.
    public func stop(namespace: String, node: String, request: StopRequest) async throws -> StopResponse {
        try await call(StopResponse.self, subject: NexSubject.stop(namespace: namespace, node: node), body: try Self.json(request))
    }

    /// Puts `node` in lame duck mode (`$NEX.LAMEDUCK.<node>`): it refuses new deploys and stops restarting
    /// essential workloads; running workloads keep running. With `delay`, its reschedulable
    /// services move to other nodes of its nexus at once and the node exits after `delay` (or
    /// as soon as it runs nothing).
    public func lameDuck(node: String, delay: Duration? = nil) async throws -> LameDuckResponse {
        let body = try delay.map { try Self.json(LameDuckRequest(delay: GoDuration.format($0))) } ?? ByteBuffer()
        return try await call(LameDuckResponse.self, subject: NexSubject.lameDuck(node: node), body: body)
    }

    /// Events of `namespace` (`*` for all) and `type` (nil for all), from now on. Messages that
    /// are not CloudEvents are skipped.
    public func events(namespace: String = "*", type: NexEventType? = nil) async throws
        -> some AsyncSequence<NexEvent<JSONValue>, Never>
    {
        let subscription = try await connection.subscribe(to: NexSubject.event(namespace: namespace, type: type))
        return subscription.compactMap { message in
            try? JSONDecoder().decode(NexEvent<JSONValue>.self, from: Data(message.payload.readableBytesView))
        }
    }

    /// Log records of workloads; each argument may be `*`.
    public func logs(namespace: String = "*", node: String = "*", workloadName: String = "*", workloadID: String = "*")
        async throws -> some AsyncSequence<(subject: String, record: LogRecord), Never>
    {
        let subject = NexSubject.logs(namespace: namespace, node: node, workloadName: workloadName, workloadID: workloadID)
        let subscription = try await connection.subscribe(to: subject)
        return subscription.compactMap { message -> (subject: String, record: LogRecord)? in
            guard let record = try? JSONDecoder().decode(LogRecord.self, from: Data(message.payload.readableBytesView))
            else { return nil }
            return (message.subject, record)
        }
    }

    // MARK: Plumbing

    /// One request, in a client span named by its subject's verb (`$NEX.DEPLOY`), whose
    /// `traceparent` travels in the request's headers.
    private func call<T: Codable & Sendable>(_ type: T.Type, subject: String, body: ByteBuffer) async throws -> T {
        try await withSpan(Self.operation(subject), ofKind: .client) { span in
            span.attributes["messaging.destination.name"] = subject
            let reply = try await connection.request(body, to: subject, headers: .tracing(), timeout: timeout)
            return try Self.unwrap(type, reply, subject: subject)
        }
    }

    /// `$NEX.DEPLOY.ns.node` → `$NEX.DEPLOY`: span names stay few.
    static func operation(_ subject: String) -> String {
        subject.split(separator: ".").prefix(2).joined(separator: ".")
    }

    /// Publishes once with a private inbox and collects every decodable reply until `window`
    /// ends, or `expecting` replies are in.
    private func gather<T: Codable & Sendable>(_ type: T.Type, subject: String, body: ByteBuffer, window: Duration,
                                               expecting: Int? = nil) async throws -> [T]
    {
        let inbox = connection.newInbox()
        let replies = try await connection.subscribe(to: inbox)
        defer { Task { try? await replies.unsubscribe() } }
        try await connection.publish(body, to: subject, replyTo: inbox, headers: .tracing())
        return await withTaskGroup(of: [T]?.self) { group in
            group.addTask {
                var collected: [T] = []
                for await message in replies {
                    if let value = try? Self.unwrap(type, message, subject: subject) { collected.append(value) }
                    if let expecting, collected.count >= expecting { break }
                }
                return collected
            }
            group.addTask {
                try? await Task.sleep(nanoseconds: UInt64(max(0, window.nanoseconds)))
                try? await replies.unsubscribe()
                return nil
            }
            // The collector's answer ends the wait (the window's end, or the replies expected).
            for await partial in group {
                if let partial {
                    group.cancelAll()
                    return partial
                }
            }
            return []
        }
    }

    static func unwrap<T: Codable & Sendable>(_ type: T.Type, _ message: NATSMessage, subject: String) throws -> T {
        let envelope: ControlEnvelope<T>
        do {
            envelope = try JSONDecoder().decode(ControlEnvelope<T>.self, from: Data(message.payload.readableBytesView))
        } catch let error as DecodingError {
            throw NexControlError.malformedReply(subject: subject, reason: error.requestDescription, underlying: error)
        }
        if let error = envelope.error { throw NexControlError.nodeRefused(subject: subject, message: error) }
        guard let data = envelope.data else { throw NexControlError.malformedReply(subject: subject, reason: "no data") }
        return data
    }

    static func json(_ value: some Encodable) throws -> ByteBuffer {
        ByteBuffer(bytes: try JSONEncoder().encode(value))
    }
}
