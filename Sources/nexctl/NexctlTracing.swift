import Foundation
import Logging
import NexTelemetry
import Tracing

/// nexctl's traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
/// set, each command runs in a span `nexctl <command>` whose `traceparent` travels with its
/// control requests (and `invoke`'s request), and the spans are sent before nexctl exits.
enum NexctlTracing {
    /// The exporter, bootstrapped once per process; nil when tracing is off.
    static let exporter: OTLPExporter? = {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].flatMap({ $0.isEmpty ? nil : $0 })
            ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"].flatMap({ $0.isEmpty ? nil : $0 }),
            let endpoint = try? OTLPExporter.Endpoint(url: url)
        else { return nil }
        let exporter = OTLPExporter(endpoint: endpoint, serviceName: environment["OTEL_SERVICE_NAME"] ?? "nexctl",
                                    logger: Logger(label: "nexctl"))
        InstrumentationSystem.bootstrap(OTLPTracer(exporter: exporter))
        return exporter
    }()

    /// Runs `body` in the command's span, then sends the spans.
    static func run(_ body: () async throws -> Void) async throws {
        guard let exporter else { return try await body() }
        let span = InstrumentationSystem.tracer.startSpan("nexctl \(commandName)", context: .topLevel, ofKind: .client)
        do {
            try await InstrumentationContext.withValue(span.context) { try await body() }
            span.end()
            await exporter.flush()
        } catch {
            span.recordError(error)
            span.end()
            await exporter.flush()
            throw error
        }
    }

    /// The subcommand words of this run: `node ls`, `invoke`.
    static var commandName: String {
        let words = CommandLine.arguments.dropFirst().prefix { !$0.hasPrefix("-") }
        let known = ["node", "workload", "monitor", "keys"]
        if let first = words.first, known.contains(first), words.count > 1 {
            return "\(first) \(words[words.index(after: words.startIndex)])"
        }
        return words.first ?? "help"
    }
}
