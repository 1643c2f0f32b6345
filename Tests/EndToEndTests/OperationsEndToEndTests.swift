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
