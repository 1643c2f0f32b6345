import ArgumentParser
import Foundation
import NexControl

/// `nexctl logs [--node ID] [--workload NAME] [--id WORKLOAD_ID] [--level LEVEL] [--follow]`
/// (Nex 0.2's `--workload_name` and `--workload_id` are accepted too).
struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print workloads' log lines.",
        discussion: """
            Subscribes $NEX.logs.<namespace>.<node>.<workload name>.<workload id>, with * for what is \
            not given, and prints 'timestamp node workload: text' lines. Without --follow it prints \
            what arrives within --timeout; with --follow, until interrupted.
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this node's workloads.") var node: String?
    @Option(name: [.customLong("workload"), .customLong("workload_name")], help: "Only workloads of this name.")
    var workload: String?
    @Option(name: [.customLong("id"), .customLong("workload_id")], help: "Only this workload id.") var id: String?
    @Option(help: "Only lines this severe or more: panic, fatal, error, warn, info, debug, trace, or Nex's 0-6.")
    var level: LogLevel?
    @Flag(help: "Keep printing until interrupted.") var follow = false
    @Flag(help: "Print each line as JSON.") var json = false

    func run() async throws {
        try await Nexctl.perform {
            let nex = try await global.connect()
            let lines = try await nex.logs(namespace: global.namespace, node: node ?? "*",
                                           workloadName: workload ?? "*", workloadID: id ?? "*")
            try await nex.connection.flush()
            let json = self.json, level = self.level
            let printing = Task {
                for await (subject, record) in lines {
                    if let level, record.level > level.rawValue { continue }
                    let line = WorkloadLogLine(subject: subject, record: record, received: Date())
                    FileHandle.standardOutput.write(Data(((json ? line.json : line.formatted) + "\n").utf8))
                }
            }
            if follow {
                await printing.value
            } else {
                try? await Task.sleep(for: .milliseconds(Int64(global.timeout * 1000)))
                printing.cancel()
                await nex.connection.close()
            }
        }
    }
}

/// A log severity on Nex's scale (0 panic ... 6 trace), by name or number.
enum LogLevel: Int, ExpressibleByArgument {
    case panic, fatal, error, warn, info, debug, trace

    init?(argument: String) {
        let names = ["panic", "fatal", "error", "warn", "info", "debug", "trace"]
        if let number = Int(argument), let level = LogLevel(rawValue: number) {
            self = level
        } else if let index = names.firstIndex(of: argument.lowercased() == "warning" ? "warn" : argument.lowercased()) {
            self = LogLevel(rawValue: index)!
        } else {
            return nil
        }
    }
}
