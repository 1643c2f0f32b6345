import ArgumentParser
import Foundation
import NexControl

/// `nexctl workload ls`: every workload of the namespace on every node that answers, in one table.
struct Workload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Workloads across the fleet.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls",
            abstract: "List the workloads of the namespace on every node (workload ping).",
            discussion: "Nodes that do not answer within --timeout are left out; the count of nodes that answered is printed.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only the workload with this id or name.") var workload: String?
        @Option(help: "Only the workloads on this node.") var node: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await Nexctl.perform {
                try await listWorkloads(global: global, matching: workload, node: node, json: json)
            }
        }
    }
}

extension Node {
    /// `nexctl node probe [--workload ID_OR_NAME]`: `workload ls` under its older name.
    struct Probe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List running workloads of the namespace, by node (the same as workload ls).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only the workload with this id or name.") var workload: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await Nexctl.perform {
                try await listWorkloads(global: global, matching: workload, node: nil, json: json)
            }
        }
    }
}

/// One table of the workloads found by a workload ping: node, id, name, type, state, uptime, restarts.
private func listWorkloads(global: GlobalOptions, matching workload: String?, node: String?, json: Bool) async throws {
    let nex = try await global.connect()
    let found = try await nex.runningWorkloads(namespace: global.namespace, matching: workload, node: node,
                                               window: global.wait)
    await nex.connection.close()
    if json { return try printJSON(found) }
    var rows = [["NODE", "WORKLOAD ID", "NAME", "NAMESPACE", "TYPE", "STATE", "UPTIME", "RESTARTS"]]
    for workload in found {
        rows.append([workload.nodeID, workload.id, workload.name, workload.namespace, workload.type,
                     workload.state ?? "", workload.uptime ?? "", workload.restarts.map(String.init) ?? ""])
    }
    printTable(rows)
    let nodes = Set(found.map(\.nodeID)).count
    print(found.isEmpty ? "no workloads answered within \(global.timeout) s"
                        : "\(found.count) workload\(found.count == 1 ? "" : "s") on \(nodes) node\(nodes == 1 ? "" : "s")")
}
