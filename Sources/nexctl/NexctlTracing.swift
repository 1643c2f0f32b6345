import Foundation
import Logging
import NexTelemetry
import ArgumentParser
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

    /// The subcommand words of this run (`node ls`, `invoke`), wherever options stand.
    static var commandName: String {
        let commands = Set(Nexctl.configuration.subcommands.map { $0._commandName })
        let groups = ["node", "workload", "monitor", "keys"]
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let index = arguments.firstIndex(where: commands.contains) else { return "help" }
        let first = arguments[index]
        if groups.contains(first), let next = arguments[(index + 1)...].first(where: { !$0.hasPrefix("-") }) {
            return "\(first) \(next)"
        }
        return first
    }
}
