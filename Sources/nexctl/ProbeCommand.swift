import ArgumentParser
import Foundation
import NexControl

extension Node {
    /// `nexctl node probe [--workload ID_OR_NAME]`: which nodes run which workloads (`$NEX.WPING`).
    struct Probe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List running workloads of the namespace, by node (workload ping).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only the workload with this id or name.") var workload: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await Nexctl.perform {
                let nex = try await global.connect()
                let found = try await nex.runningWorkloads(namespace: global.namespace, matching: workload,
                                                           window: global.wait)
                await nex.connection.close()
                if json { return try printJSON(found) }
                var rows = [["NODE", "WORKLOAD ID", "NAME", "TYPE"]]
                for workload in found { rows.append([workload.nodeID, workload.id, workload.name, workload.type]) }
                printTable(rows)
                if found.isEmpty { print("no workloads answered within \(global.timeout) s") }
            }
        }
    }
}
