import NATSWire
import Tracing

/// Writes trace context (W3C `traceparent`) into NATS headers, for
/// `InstrumentationSystem.instrument.inject(_:into:using:)`.
public struct NATSHeadersInjector: Injector {
    public init() {}
    public func inject(_ value: String, forKey key: String, into carrier: inout NATSHeaders) {
        carrier[key] = value
    }
}

/// Reads trace context out of a message's NATS headers.
public struct NATSHeadersExtractor: Extractor {
    public init() {}
    public func extract(key: String, from carrier: NATSHeaders) -> String? {
        carrier[key]
    }
}

extension InstrumentationContext {
    /// The trace context of `message`'s headers (the sender's span), or none.
    public static func extracted(from message: NATSMessage) -> InstrumentationContext {
        var context = InstrumentationContext.topLevel
        if let headers = message.headers {
            InstrumentationSystem.instrument.extract(headers, into: &context, using: NATSHeadersExtractor())
        }
        return context
    }
}

extension NATSHeaders {
    /// Headers carrying the current task's trace context; nil when there is none to carry.
    public static func tracing(_ context: InstrumentationContext? = .current) -> NATSHeaders? {
        guard let context else { return nil }
        var headers = NATSHeaders()
        InstrumentationSystem.instrument.inject(context, into: &headers, using: NATSHeadersInjector())
        return headers.isEmpty ? nil : headers
    }
}

/// Whether the process traces at all.
public enum NexTracing {
    /// True once a tracer other than the no-op one is bootstrapped: hot paths skip span and
    /// header work otherwise.
    public static var isOn: Bool { !(InstrumentationSystem.tracer is NoOpTracer) }
}
