import Synchronization
import Tracing

/// The span a context belongs to, as a `traceparent` (its trace and its own span id).
enum TraceParentKey: InstrumentationContextKey {
    typealias Value = TraceParent
    static let nameOverride: String? = "traceparent"
}

extension InstrumentationContext {
    /// The W3C trace context of the span this context belongs to, if any.
    public var traceParent: TraceParent? {
        get { self[TraceParentKey.self] }
        set { self[TraceParentKey.self] = newValue }
    }
}

/// A swift-distributed-tracing `Tracer` that hands its ended spans to an ``OTLPExporter``,
/// and carries W3C `traceparent` in and out of carriers (NATS headers, see NexControl's
/// `NATSHeadersInjector`). Every span is recorded, except under a parent that says it is not
/// sampled: then the ids still travel, nothing is exported.
public struct OTLPTracer: Tracer {
    public typealias Span = OTLPSpan
    private let exporter: OTLPExporter

    public init(exporter: OTLPExporter) {
        self.exporter = exporter
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> InstrumentationContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> OTLPSpan {
        var context = context()
        let parent = context.traceParent
        let own = parent?.child() ?? .random()
        context.traceParent = own
        return OTLPSpan(operationName: operationName, context: context, kind: kind, parentSpanID: parent?.spanID,
                        start: instant().nanosecondsSinceEpoch, recording: own.sampled, exporter: exporter)
    }

    public func forceFlush() { exporter.flushSoon() }

    public func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract
    ) where Extract.Carrier == Carrier {
        if let value = extractor.extract(key: "traceparent", from: carrier), let parent = TraceParent(header: value) {
            context.traceParent = parent
        }
    }

    public func inject<Carrier, Inject: Injector>(
        _ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject
    ) where Inject.Carrier == Carrier {
        if let parent = context.traceParent { injector.inject(parent.header, forKey: "traceparent", into: &carrier) }
    }
}

/// A span of an ``OTLPTracer``; ending it queues it for export.
public final class OTLPSpan: Tracing.Span {
    public let context: InstrumentationContext
    private let kind: SpanKind
    private let parentSpanID: [UInt8]?
    private let start: UInt64
    private let exporter: OTLPExporter
    private struct State {
        var operationName: String
        var attributes = SpanAttributes()
        var status: SpanStatus?
        var events: [SpanEvent] = []
        var recording: Bool
    }
    private let state: Mutex<State>

    init(operationName: String, context: InstrumentationContext, kind: SpanKind, parentSpanID: [UInt8]?, start: UInt64,
         recording: Bool, exporter: OTLPExporter) {
        self.context = context
        self.kind = kind
        self.parentSpanID = parentSpanID
        self.start = start
        self.exporter = exporter
        state = Mutex(State(operationName: operationName, recording: recording))
    }

    public var operationName: String {
        get { state.withLock { $0.operationName } }
        set { state.withLock { if $0.recording { $0.operationName = newValue } } }
    }

    public var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { if $0.recording { $0.attributes = newValue } } }
    }

    public var isRecording: Bool { state.withLock { $0.recording } }

    public func setStatus(_ status: SpanStatus) {
        state.withLock { if $0.recording { $0.status = status } }
    }

    public func addEvent(_ event: SpanEvent) {
        state.withLock { if $0.recording { $0.events.append(event) } }
    }

    public func recordError<Instant: TracerInstant>(
        _ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant
    ) {
        var eventAttributes = attributes
        eventAttributes["exception.message"] = "\(error)"
        addEvent(SpanEvent(name: "exception", at: instant(), attributes: eventAttributes))
        setStatus(SpanStatus(code: .error, message: "\(error)"))
    }

    public func addLink(_ link: SpanLink) {}

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let ended = state.withLock { state -> State? in
            guard state.recording else { return nil }
            state.recording = false
            return state
        }
        guard let ended, let own = context.traceParent else { return }
        exporter.enqueue(FinishedSpan(
            name: ended.operationName, traceID: own.traceID, spanID: own.spanID, parentSpanID: parentSpanID,
            kind: kind, start: start, end: instant().nanosecondsSinceEpoch, attributes: ended.attributes,
            status: ended.status, events: ended.events))
    }
}

/// An ended span, as exported.
struct FinishedSpan: Sendable {
    var name: String
    var traceID: [UInt8]
    var spanID: [UInt8]
    var parentSpanID: [UInt8]?
    var kind: SpanKind
    var start: UInt64
    var end: UInt64
    var attributes: SpanAttributes
    var status: SpanStatus?
    var events: [SpanEvent]
}
