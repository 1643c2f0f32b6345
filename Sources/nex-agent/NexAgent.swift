import ArgumentParser

@main
struct NexAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nex-agent",
        abstract: "Runs one workload for its node, over the loopback agent bus.",
        discussion: "Its commands arrive with the control plane and workload issues; see README.md.",
        version: "0.1.0"
    )
}
