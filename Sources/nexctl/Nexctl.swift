import ArgumentParser

@main
struct Nexctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nexctl",
        abstract: "Drives Nex nodes over the $NEX control API.",
        discussion: "Its commands arrive with the control plane and workload issues; see README.md.",
        version: "0.1.0"
    )
}
