import ArgumentParser

@main
struct NexNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nex-node",
        abstract: "Runs a Nex node: turns this host into a place where workloads run under NATS control.",
        discussion: "Its commands arrive with the control plane and workload issues; see README.md.",
        version: "0.1.0"
    )
}
