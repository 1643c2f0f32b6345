import ArgumentParser
import Foundation
import NexControl

/// `nexctl logs [--node ID] [--workload NAME] [--id WORKLOAD_ID] [--follow]`.
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
    @Option(help: "Only workloads of this name.") var workload: String?
    @Option(help: "Only this workload id.") var id: String?
    @Flag(help: "Keep printing until interrupted.") var follow = false
    @Flag(help: "Print each line as JSON.") var json = false

    func run() async throws {
        try await Nexctl.perform {
            let nex = try await global.connect()
            let lines = try await nex.logs(namespace: global.namespace, node: node ?? "*",
                                           workloadName: workload ?? "*", workloadID: id ?? "*")
            try await nex.connection.flush()
            let json = self.json
            let printing = Task {
                for await (subject, record) in lines {
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
