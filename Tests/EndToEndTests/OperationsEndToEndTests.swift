import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// What an operator sees of a running node: its log lines (text or JSON, on stderr and on
/// `$NEX.logs.system.<node>`), its metrics and its traces.
@Suite struct OperationsEndToEndTests {
    @Test func jsonLogLinesAndTheNodesLogOnNATS() async throws {
        try await withNATSServer { server in
            let watcher = try await server.connectedClient()
            // Subscribed before the node starts: its first lines are kept until it connects.
            let lines = try await watcher.subscribe(to: "$NEX.logs.system.>")
            try await watcher.flush()
            try await withNode(server: server, .init(extraArguments: ["--log-format", "json", "--logger", "nats"])) { node in
                var records: [(subject: String, record: LogRecord)] = []
                let deadline = ContinuousClock.now + .seconds(10)
                for await message in lines {
                    records.append((message.subject, try JSONDecoder().decode(LogRecord.self, from: Data(message.payload.readableBytesView))))
                    if records.contains(where: { $0.record.text.contains("nex-node serving") }) || ContinuousClock.now > deadline { break }
                }
                #expect(records.allSatisfy { $0.subject == "$NEX.logs.system.\(node.nodeID)" && $0.record.id == node.nodeID })
                let serving = try #require(records.first { $0.record.text.contains("nex-node serving") }, "\(records)")
                #expect(serving.record.level == 4, "info is Nex's 4")
                #expect(serving.record.text.contains("node_id=\(node.nodeID)"), "\(serving.record.text)")

                // Every stderr line is one JSON object with time, level, label and message.
                let stderr = try String(contentsOfFile: node.stderrPath, encoding: .utf8)
                let objects = try stderr.split(separator: "\n").map { line in
                    try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
                }
                #expect(!objects.isEmpty)
                #expect(objects.allSatisfy { $0["time"] is String && $0["level"] is String && $0["label"] is String && $0["message"] is String })
                #expect(objects.contains { $0["message"] as? String == "nex-node serving" && $0["node_id"] as? String == node.nodeID })
            }
            await watcher.close()
        }
    }

    @Test func aBadLogFormatIsRefusedNamingIt() async throws {
        let result = try await runCommand(try Executables.nexNode, ["up", "--log-format", "xml", "-s", "nats://127.0.0.1:1"],
                                          timeout: .seconds(10))
        #expect(result.status != 0 && result.stderr.contains("xml"), "\(result.stderr)")
    }
}

/// The node's Prometheus metrics, scraped over HTTP while workloads run.
extension OperationsEndToEndTests {
    /// One sample of a Prometheus text exposition: `name{label="value",...} number`.
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double

        static func parse(_ text: String) -> [Sample] {
            text.split(separator: "\n").compactMap { line -> Sample? in
                guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...])
                else { return nil }
                let series = line[..<space]
                guard let brace = series.firstIndex(of: "{") else { return Sample(name: String(series), labels: [:], value: value) }
                var labels: [String: String] = [:]
                for pair in series[series.index(after: brace)..<series.index(before: series.endIndex)].split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    if parts.count == 2 { labels[String(parts[0])] = String(parts[1].dropFirst().dropLast()) }
                }
                return Sample(name: String(series[..<brace]), labels: labels, value: value)
            }
        }
    }

    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
    }

    /// The port the node logged its metrics URL with.
    static func metricsPort(_ node: NodeProcess) async throws -> Int {
        var port: Int?
        try await waitFor(timeout: .seconds(10), "the node logs its metrics URL") {
            guard let range = node.log.range(of: "http://127.0.0.1:") else { return false }
            port = Int(node.log[range.upperBound...].prefix { $0.isNumber })
            return port != nil
        }
        return try #require(port)
    }

    static func scrape(_ port: Int) throws -> [Sample] {
        let data = try #require(LoopbackHTTP.get(port: port, path: "/metrics"), "GET /metrics answered 200")
        return Sample.parse(String(decoding: data, as: UTF8.self))
    }

    @Test func metricsAreScrapedAndMoveAsWorkloadsRun() async throws {
        let config = #"{"workload_types": ["native", "javascript"], "otel_metrics": true}"#
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: config, extraArguments: ["--metrics-port", "0"])) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let port = try await Self.metricsPort(node)
                    let before = try Self.scrape(port)
                    #expect(Self.value(before, "nex_workload_count") == 0)
                    #expect(Self.value(before, "nex_lame_duck") == 0)
                    #expect((Self.value(before, "nex_agents_warm") ?? 0) >= 0)

                    // A chatty service and a KV counter function.
                    let service = try WorkloadFixture()
                    let running = try await service.deploy(nex, node: node.nodeID, name: "svc")
                    let directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-metrics-")
                    let counter = try FunctionEndToEndTests.example("kv-counter.js", in: directory)
                    let submission = try WorkloadSubmission(
                        name: "counter", type: "javascript", location: .file(path: counter),
                        artifactHash: try ArtifactDigest.sha256Hex(ofFile: counter), triggerSubjects: ["m.count"])
                    let functionIssuer = try NKeyPair.generate(.account)
                    let function = try await nex.deploy(submission, namespace: "default", node: node.nodeID,
                                                        issuer: functionIssuer, sender: try XKeyPair.generate())
                    for _ in 0..<5 { _ = try await nex.connection.request("", to: "m.count", timeout: .seconds(10)) }
                    // A refused deploy (a type the node does not run).
                    _ = try? await nex.deploy(
                        try WorkloadSubmission(name: "w", type: "wasm", location: .file(path: counter),
                                               artifactHash: try ArtifactDigest.sha256Hex(ofFile: counter), triggerSubjects: ["m.w"]),
                        namespace: "default", node: node.nodeID, issuer: try NKeyPair.generate(.account), sender: try XKeyPair.generate())
                    // A few ticks of the service's output, and past the second the rendering is kept.
                    try await Task.sleep(for: .milliseconds(1200))

                    let after = try Self.scrape(port)
                    #expect(Self.value(after, "nex_workload_count") == 2)
                    #expect(Self.value(after, "nex_workloads", ["state": "running"]) == 2)
                    #expect(Self.value(after, "nex_deploys_total", ["result": "started"]) == 2)
                    #expect(Self.value(after, "nex_deploys_total", ["result": "refused"]) == 1)
                    let fn = ["namespace": "default", "workload_name": "counter"]
                    #expect(Self.value(after, "nex_function_trigger", fn) == 5)
                    #expect(Self.value(after, "nex_function_failed_trigger", fn) == 0)
                    #expect(Self.value(after, "nex_function_duration_seconds_count", fn) == 5)
                    // The counter's first get finds no key (404); each run then sets it (200).
                    #expect(Self.value(after, "nex_host_calls_total", ["service": "kv", "code": "404"]) == 1)
                    #expect((Self.value(after, "nex_host_calls_total", ["service": "kv", "code": "200"]) ?? 0) >= 9)
                    let svc = ["workload_id": running.id, "workload_name": "svc"]
                    #expect((Self.value(after, "nex_workload_memory_bytes", svc) ?? 0) > 0)
                    #expect(Self.value(after, "nex_workload_cpu_seconds", svc) != nil)
                    let listed = try await nex.runningWorkloads(namespace: "default", node: node.nodeID)
                    #expect(listed.first { $0.id == running.id }?.cpuSeconds != nil, "the sandbox's CPU time is read: \(listed)")
                    #expect((listed.first { $0.id == running.id }?.memoryBytes ?? 0) > 0)
                    #expect((Self.value(after, "nex_workload_log_lines_total", svc) ?? 0) >= 3)
                    #expect((Self.value(after, "nex_bus_messages_total") ?? 0) > (Self.value(before, "nex_bus_messages_total") ?? 0))

                    // Stopped: its series go, the counts follow.
                    _ = try await service.stop(nex, node: node.nodeID, id: running.id, name: "svc")
                    try await waitFor(timeout: .seconds(10), "the stopped service leaves the metrics") {
                        let samples = (try? Self.scrape(port)) ?? []
                        return Self.value(samples, "nex_workload_count") == 1
                            && Self.value(samples, "nex_workload_memory_bytes", svc) == nil
                    }
                    // So do a stopped function's invocation series (a deployer cycling through
                    // names must not grow them without bound).
                    _ = try await nex.stopWorkload(namespace: "default", node: node.nodeID, id: function.id, name: "counter",
                                                   issuer: functionIssuer)
                    try await waitFor(timeout: .seconds(10), "the stopped function leaves the metrics") {
                        let samples = (try? Self.scrape(port)) ?? []
                        return Self.value(samples, "nex_workload_count") == 0
                            && Self.value(samples, "nex_function_trigger", fn) == nil
                            && Self.value(samples, "nex_function_duration_seconds_count", fn) == nil
                    }
                }
            }
        }
    }

    @Test func theMetricsEndpointAnswersHostileRequestsAndKeepsServing() async throws {
        try await withNATSServer { server in
            try await withNode(server: server, .init(extraArguments: ["--metrics", "--metrics_port", "0"])) { node in
                let port = try await Self.metricsPort(node)
                #expect(LoopbackHTTP.exchange(port: port, request: Array("GET /secret HTTP/1.0\r\n\r\n".utf8))?.status == 404)
                #expect(LoopbackHTTP.exchange(port: port, request: Array("POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc".utf8))?.status == 405)
                // Garbage and an endless header: answered 400 or cut off, never served.
                let garbage = LoopbackHTTP.exchange(port: port, request: Array("\u{0}\u{1}NOT HTTP\r\n\r\n".utf8))
                #expect(garbage == nil || garbage?.status == 400)
                let huge = LoopbackHTTP.exchange(port: port, request: Array(("GET /metrics HTTP/1.0\r\nX: " + String(repeating: "a", count: 200_000) + "\r\n\r\n").utf8))
                #expect(huge?.status != 200)
                // Still serving, and so is the node.
                #expect(try Self.scrape(port).contains { $0.name == "nex_workload_count" })
                try await withControlClient(server, timeout: .seconds(5)) { nex in
                    let pong = try await nex.ping(node: node.nodeID)
                    #expect(pong.nodeID == node.nodeID)
                }
            }
        }
    }
}

/// Traces across processes: nexctl, the node, the agent (which carries the context) and host
/// services, received by an OTLP/HTTP collector started by the test.
extension OperationsEndToEndTests {
    @Test func oneTraceFollowsADeployAndAnInvocationAcrossProcesses() async throws {
        let receiver = try OTLPReceiver()
        defer { receiver.stop() }
        let config = #"{"workload_types": ["native", "javascript"], "otel_traces": true}"#
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: config, extraArguments: ["--otlp-endpoint", receiver.url])) { node in
                let nexctl = try Executables.nexctl
                let home = try TemporaryDirectory(prefix: "nexctl-home-")
                let environment = ChildEnvironment.base().merging([
                    "NEX_HOME": home.appending("nex"), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                ]) { $1 }
                let artifacts = try NodeUser.artifactDirectory(prefix: "nex-e2e-traces-")
                let counter = try FunctionEndToEndTests.example("kv-counter.js", in: artifacts)
                let devrun = try await runCommand(
                    nexctl, ["devrun", counter, "--type", "javascript", "--trigger", "t.count", "--name", "counter",
                             "-s", server.url, "--timeout", "5", "--auction-wait", "0.5"],
                    environment: environment, timeout: .seconds(60))
                #expect(devrun.status == 0, "\(devrun.stderr)")
                let invoke = try await runCommand(nexctl, ["invoke", "t.count", "-s", server.url], environment: environment)
                #expect(invoke.stdout.contains("1"), "\(invoke.stdout) \(invoke.stderr)")

                // The deploy: nexctl's command span, its $NEX.DEPLOY client span, the node's server
                // span under it, and the deploy steps under that.
                var spans: [OTLPReceiver.ReceivedSpan] = []
                try await waitFor(timeout: .seconds(15), "the node's spans arrive: \(receiver.spans.map(\.name))") {
                    spans = receiver.spans
                    return spans.contains { $0.name == "host service kv.set" } && spans.contains { $0.name == "deploy: start in an agent" }
                }
                func one(_ name: String, _ service: String) throws -> OTLPReceiver.ReceivedSpan {
                    try #require(spans.first { $0.name == name && $0.service == service }, "no \(name) from \(service): \(spans.map { "\($0.service):\($0.name)" })")
                }
                let devrunSpan = try one("nexctl devrun", "nexctl")
                let deployClient = try #require(spans.first { $0.name == "$NEX.DEPLOY" && $0.service == "nexctl" })
                let deployServer = try #require(spans.first { $0.name == "$NEX.DEPLOY" && $0.service == "nex-node" })
                #expect(deployClient.parentSpanID == devrunSpan.spanID && deployClient.traceID == devrunSpan.traceID)
                #expect(deployServer.parentSpanID == deployClient.spanID && deployServer.traceID == devrunSpan.traceID)
                #expect(deployServer.kind == 2 && deployClient.kind == 3, "server and client kinds")
                for step in ["deploy: check", "deploy: fetch artifact", "deploy: start in an agent"] {
                    let span = try one(step, "nex-node")
                    #expect(span.parentSpanID == deployServer.spanID && span.traceID == devrunSpan.traceID, "\(step)")
                }

                // The invocation: nexctl invoke → the node's function span → (through the agent)
                // the host-service calls the function made.
                let invokeSpan = try one("nexctl invoke", "nexctl")
                let function = try one("function counter", "nex-node")
                #expect(function.parentSpanID == invokeSpan.spanID && function.traceID == invokeSpan.traceID)
                #expect(function.attributes["messaging.destination.name"] == "t.count")
                let hostCalls = spans.filter { $0.name.hasPrefix("host service kv.") }
                #expect(hostCalls.count >= 2, "\(hostCalls)")
                #expect(hostCalls.allSatisfy { $0.parentSpanID == function.spanID && $0.traceID == invokeSpan.traceID }, "\(hostCalls)")
                #expect(hostCalls.contains { $0.name == "host service kv.get" && $0.attributes["nex.host_service.code"] == "404" })
                #expect(node.log.contains("traces exported"), "\(node.log)")
            }
        }
    }
}
