import FoundationEssentials
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization
import Tracing

/// Sends ended spans to an OpenTelemetry collector over OTLP/HTTP with JSON bodies
/// (`POST <endpoint>/v1/traces`), in batches: every ``interval``, or sooner when
/// ``batchSize`` spans wait. At most ``capacity`` spans wait; past that new ones are dropped
/// and counted, so a collector that is down never grows the process.
///
/// A `Service`: run it (in the process's `ServiceGroup`) for spans to leave; at a graceful
/// shutdown it sends what is queued, then returns.
public final class OTLPExporter: Service, Sendable {
    /// Where spans go: an `http://` URL.
    public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        /// The traces path: `/v1/traces` under the URL's own path.
        public var path: String

        /// `http://host:port[/base]` or `host:port` (Nex 0.2's `otlp_exporter_url` form).
        /// `https` is refused: this exporter speaks plain HTTP (run a local collector).
        public init(url: String) throws(OTLPEndpointError) {
            var rest = Substring(url)
            if rest.hasPrefix("https://") { throw OTLPEndpointError(url: url, problem: "https is not supported; use a local collector over http") }
            if rest.hasPrefix("http://") { rest = rest.dropFirst(7) } else if rest.contains("://") {
                throw OTLPEndpointError(url: url, problem: "only http:// URLs")
            }
            let slash = rest.firstIndex(of: "/") ?? rest.endIndex
            let authority = rest[..<slash]
            var base = String(rest[slash...])
            while base.hasSuffix("/") { base.removeLast() }
            let hostPart: Substring, portPart: Substring?
            if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
                hostPart = authority[authority.index(after: authority.startIndex)..<close]
                let after = authority[authority.index(after: close)...]
                portPart = after.hasPrefix(":") ? after.dropFirst() : nil
            } else if let colon = authority.lastIndex(of: ":") {
                hostPart = authority[..<colon]
                portPart = authority[authority.index(after: colon)...]
            } else {
                hostPart = authority
                portPart = nil
            }
            guard !hostPart.isEmpty, !hostPart.contains(where: { $0.isWhitespace || $0 == "@" }) else {
                throw OTLPEndpointError(url: url, problem: "no host")
            }
            let port = portPart.map { Int($0) } ?? 4318
            guard let port, (1...65535).contains(port) else { throw OTLPEndpointError(url: url, problem: "bad port") }
            self.host = String(hostPart)
            self.port = port
            self.path = base.hasSuffix("/v1/traces") ? base : base + "/v1/traces"
        }

        public var description: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)" }
    }

    public let endpoint: Endpoint
    public let serviceName: String
    public let interval: Duration
    public let batchSize: Int
    public let capacity: Int
    private let logger: Logger
    private let resource: [String: String]
    private struct State {
        var queue: [FinishedSpan] = []
        var dropped = 0
        var waiter: CheckedContinuation<Void, Never>?
        var failuresLogged = 0
    }
    private let state = Mutex(State())

    public init(endpoint: Endpoint, serviceName: String, resource: [String: String] = [:], interval: Duration = .seconds(1),
                batchSize: Int = 256, capacity: Int = 4096, logger: Logger) {
        self.endpoint = endpoint
        self.serviceName = serviceName
        self.resource = resource
        self.interval = interval
        self.batchSize = batchSize
        self.capacity = capacity
        self.logger = logger
    }

    /// Spans dropped so far (queue full).
    public var dropped: Int { state.withLock { $0.dropped } }

    func enqueue(_ span: FinishedSpan) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.queue.count < capacity else {
                state.dropped += 1
                return nil
            }
            state.queue.append(span)
            return state.queue.count >= batchSize ? state.waiter.take() : nil
        }
        waiter?.resume()
    }

    /// Wakes the sender now.
    func flushSoon() {
        state.withLock { $0.waiter.take() }?.resume()
    }

    public func run() async throws {
        let interval = self.interval
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                // The interval: the sender wakes up at least this often.
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        self.flushSoon()
                    }
                }
                while !Task.isCancelled, !Task.isShuttingDownGracefully {
                    await waitForWork()
                    await sendQueued()
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.flushSoon()
        }
        await sendQueued()
    }

    /// Sends every queued span now, in batches (for short-lived processes such as `nexctl`).
    public func flush() async { await sendQueued() }

    private func waitForWork() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if state.queue.count >= batchSize { return true }
                    state.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            self.flushSoon()
        }
    }

    private func sendQueued() async {
        while true {
            let batch = state.withLock { state -> [FinishedSpan] in
                let taken = Array(state.queue.prefix(batchSize))
                state.queue.removeFirst(taken.count)
                return taken
            }
            guard !batch.isEmpty else { return }
            do {
                try await postWithin(.seconds(5), OTLPJSON.body(batch, serviceName: serviceName, resource: resource))
            } catch {
                let first = state.withLock { state -> Bool in
                    state.failuresLogged += 1
                    return state.failuresLogged == 1 || state.failuresLogged % 100 == 0
                }
                if first {
                    logger.warning("traces not exported", metadata: [
                        "endpoint": "\(endpoint)", "spans": "\(batch.count)", "error": "\(error)"])
                }
                return
            }
        }
    }

    /// ``post(_:)``, given up after `limit`: a collector that takes the connection and never
    /// answers holds up neither the exporter nor a shutdown.
    private func postWithin(_ limit: Duration, _ body: [UInt8]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.post(body) }
            group.addTask {
                try await Task.sleep(for: limit)
                throw OTLPExportError(status: nil, timedOut: true)
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    private func post(_ body: [UInt8]) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .connect(host: endpoint.host, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        let status = try await withTaskCancellationHandler {
          try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: endpoint.path)
            head.headers.add(name: "host", value: "\(endpoint.host):\(endpoint.port)")
            head.headers.add(name: "content-type", value: "application/json")
            head.headers.add(name: "content-length", value: String(body.count))
            head.headers.add(name: "connection", value: "close")
            try await outbound.write(.head(head))
            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
            try await outbound.write(.end(nil))
            var status: HTTPResponseStatus?
            for try await part in inbound {
                if case .head(let response) = part { status = response.status }
                if case .end = part { break }
            }
            return status
          }
        } onCancel: {
            channel.channel.close(promise: nil)
        }
        guard let status, (200..<300).contains(status.code) else {
            throw OTLPExportError(status: status.map { Int($0.code) })
        }
    }
}

/// The collector answered with something other than 2xx (or not at all).
struct OTLPExportError: Error, CustomStringConvertible {
    var status: Int?
    var timedOut = false
    var description: String {
        timedOut ? "the collector did not answer within 5 s"
            : status.map { "the collector answered \($0)" } ?? "the collector sent no answer"
    }
}

/// An OTLP endpoint URL that cannot be used, and why.
public struct OTLPEndpointError: Error, Sendable, CustomStringConvertible {
    public var url: String
    public var problem: String
    public var description: String { "OTLP endpoint '\(url)': \(problem)" }
}

/// OTLP/JSON (`ExportTraceServiceRequest`): ids in hex, times as decimal strings, fields that
/// are absent left out.
enum OTLPJSON {
    struct Request: Encodable { var resourceSpans: [ResourceSpans] }
    struct ResourceSpans: Encodable {
        var resource: Resource
        var scopeSpans: [ScopeSpans]
    }
    struct Resource: Encodable { var attributes: [KeyValue] }
    struct ScopeSpans: Encodable {
        var scope: Scope
        var spans: [Span]
    }
    struct Scope: Encodable { var name: String }
    struct Span: Encodable {
        var traceId: String
        var spanId: String
        var parentSpanId: String?
        var name: String
        var kind: Int
        var startTimeUnixNano: String
        var endTimeUnixNano: String
        var attributes: [KeyValue]?
        var status: Status?
        var events: [Event]?
    }
    struct Status: Encodable {
        var code: Int
        var message: String?
    }
    struct Event: Encodable {
        var name: String
        var timeUnixNano: String
        var attributes: [KeyValue]
    }
    struct KeyValue: Encodable {
        var key: String
        var value: Value
    }
    /// One of OTLP's `AnyValue` fields (64-bit integers as strings, as OTLP/JSON writes them).
    struct Value: Encodable {
        var stringValue: String?
        var intValue: String?
        var doubleValue: Double?
        var boolValue: Bool?
    }

    static func body(_ spans: [FinishedSpan], serviceName: String, resource: [String: String]) -> [UInt8] {
        let resourceAttributes = [KeyValue(key: "service.name", value: Value(stringValue: serviceName))]
            + resource.sorted { $0.key < $1.key }.map { KeyValue(key: $0.key, value: Value(stringValue: $0.value)) }
        let encoded = spans.map { span in
            Span(traceId: TraceParent.hex(span.traceID), spanId: TraceParent.hex(span.spanID),
                 parentSpanId: span.parentSpanID.map(TraceParent.hex), name: span.name, kind: kind(span.kind),
                 startTimeUnixNano: String(span.start), endTimeUnixNano: String(span.end),
                 attributes: attributes(span.attributes).nonEmpty,
                 status: span.status.map { Status(code: $0.code == .ok ? 1 : 2, message: $0.message) },
                 events: span.events.map { event in
                     Event(name: event.name, timeUnixNano: String(event.nanosecondsSinceEpoch), attributes: attributes(event.attributes))
                 }.nonEmpty)
        }
        let request = Request(resourceSpans: [ResourceSpans(
            resource: Resource(attributes: resourceAttributes),
            scopeSpans: [ScopeSpans(scope: Scope(name: "nex"), spans: encoded)])])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(request)).map(Array.init) ?? []
    }

    static func kind(_ kind: SpanKind) -> Int {
        switch kind {
        case .internal: 1
        case .server: 2
        case .client: 3
        case .producer: 4
        case .consumer: 5
        }
    }

    static func attributes(_ attributes: SpanAttributes) -> [KeyValue] {
        var list: [KeyValue] = []
        attributes.forEach { key, value in list.append(KeyValue(key: key, value: self.value(value))) }
        return list.sorted { $0.key < $1.key }
    }

    static func value(_ attribute: SpanAttribute) -> Value {
        switch attribute {
        case .int32(let number): Value(intValue: String(number))
        case .int64(let number): Value(intValue: String(number))
        case .double(let number) where number.isFinite: Value(doubleValue: number)
        case .bool(let flag): Value(boolValue: flag)
        case .string(let text): Value(stringValue: text)
        default: Value(stringValue: "\(attribute)")
        }
    }
}

extension Array {
    /// Nil for an empty array: the field is then left out.
    var nonEmpty: Self? { isEmpty ? nil : self }
}
