import ArgumentParser
import Foundation
import NATSWire
import NexControl

/// `nexctl stop NODE WORKLOAD_ID --issuer SEEDFILE [--name NAME]`.
struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a workload.",
        discussion: """
            The stop JWT names the workload and must be signed by the issuer that deployed it. \
            Without --name, the name is found with a workload ping.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The node id (N...).") var node: String
    @Argument(help: "The workload id.") var workloadID: String
    @Option(help: "File holding the issuer's nkey seed (default: issuer.nk in $NEX_HOME or ~/.nex).") var issuer: String?
    @Option(help: "The workload's name (default: found with a workload ping).") var name: String?

    func run() async throws {
        try await Nexctl.perform {
            if let name { try WorkloadClaims.validateName(name) }
            let issuer = try self.issuer.map(NexKeyStore.readNKey) ?? NexKeyStore.readNKey(NexHome.store.issuerPath)
            let nex = try await global.connect()
            let name: String
            if let given = self.name {
                name = given
            } else {
                let found = try await nex.runningWorkloads(namespace: global.namespace, matching: workloadID, node: node,
                                                           window: global.wait)
                guard let workload = found.first(where: { $0.id == workloadID }) else {
                    throw WorkloadSubmissionError.workloadNotFound(workloadID, node: node)
                }
                name = workload.name
            }
            let response = try await nex.stopWorkload(namespace: global.namespace, node: node, id: workloadID,
                                                      name: name, issuer: issuer)
            await nex.connection.close()
            if response.stopped {
                print("stopped workload \(response.id) (\(response.name)) on node \(node)")
            } else {
                print("node \(node) did not stop workload \(workloadID) (\(name))")
                throw ExitCode.failure
            }
        }
    }
}
