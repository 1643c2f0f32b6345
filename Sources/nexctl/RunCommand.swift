import ArgumentParser
import Foundation
import NATSWire
import NexControl

/// The options `run` and `devrun` share: what kind of workload, and how it runs.
struct WorkloadOptions: ParsableArguments {
    @Option(help: "Workload type: native, wasm, javascript or v8 (Nex 0.2 semantics: host calls answer synchronously).")
    var type: String = "native"
    @Option(name: .customLong("description"), help: "A description, shown by node info.")
    var workloadDescription: String?
    @Option(parsing: .unconditionalSingleValue,
            help: "Program arguments: one value is split on spaces (--argv \"-p 8080\"); repeat it to pass arguments as they are.")
    var argv: [String] = []
    @Flag(help: "Restart the service when it exits (native only).")
    var essential = false
    @Flag(help: "Essential services: when the node is lost, another node of its nexus starts the service again (the environment is sealed to the nexus xkey).")
    var reschedule = false
    @Option(name: [.customLong("trigger"), .customLong("trigger_subject")], help: "A subject that triggers the function (wasm, javascript, v8); repeatable.")
    var triggers: [String] = []
    @Option(name: .customLong("jsdomain"), help: "JetStream domain of the object store holding the artifact.")
    var jsDomain: String?
    @Option(help: "Memory limit, swap included: bytes, or with K, M, G (powers of 1024), e.g. 64M.")
    var memory: String?
    @Option(help: "Processes and threads limit.")
    var processes: Int?
    @Option(name: .customLong("open-files"), help: "Open files limit.")
    var openFiles: Int?
    @Option(help: "CPU limit in thousandths of a core (500: half a core).")
    var cpu: Int?
    @Option(help: "Network: host (default) or none (a loopback of its own).")
    var network: String?

    func validate() throws {
        if reschedule, !essential { throw ValidationError("--reschedule is for essential services: add --essential") }
    }

    func submission(name: String, location: ArtifactLocation, artifactHash: String, environment: [String: String])
        throws -> WorkloadSubmission
    {
        var submission = try WorkloadSubmission(
            name: name, type: type, location: location, artifactHash: artifactHash, environment: environment,
            argv: WorkloadSubmission.arguments(fromOptionValues: argv), description: workloadDescription,
            essential: essential, triggerSubjects: triggers, jsDomain: jsDomain)
        let memoryBytes = try memory.map { text in
            guard let bytes = Self.bytes(text) else { throw ValidationError("--memory \(text): not a size (e.g. 67108864, 64M, 1G)") }
            return bytes
        }
        let limits = ResourceLimits(memoryBytes: memoryBytes, openFiles: openFiles, processes: processes, cpuMillicores: cpu)
        if limits != ResourceLimits() { submission.limits = limits }
        if reschedule { submission.reschedulable = true }
        if let network {
            guard let value = WorkloadNetwork(rawValue: network) else { throw ValidationError("--network \(network): host or none") }
            submission.network = value
        }
        return submission
    }

    /// `64M` → 67108864: a whole number with an optional K, M or G (powers of 1024).
    static func bytes(_ text: String) -> Int? {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = text.uppercased()
        if digits.hasSuffix("B") { digits.removeLast() }
        var factor = 1
        if let last = digits.last, let unit = units[last] {
            factor = unit
            digits.removeLast()
        }
        guard let value = Int(digits), value > 0 else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: factor)
        return overflow ? nil : product
    }
}

/// Where copies of a workload go when no node is named: an auction among the nodes that
/// accept the type (and match `--tag`), `--replicas` distinct nodes, the fewest workloads first.
struct PlacementOptions: ParsableArguments {
    @Option(help: "Copies to deploy, each on a distinct node chosen by auction (fewest workloads first).")
    var replicas: Int = 1
    @Option(name: .customLong("tag"), help: "Only nodes with this tag, KEY=VALUE; repeatable.")
    var tags: [String] = []
    @Option(help: "Seconds to collect auction bids.")
    var auctionWait: Double = 0.75

    func validate() throws {
        guard replicas >= 1 else { throw ValidationError("--replicas \(replicas): at least 1") }
        _ = try wantedTags()
    }

    func wantedTags() throws -> [String: String] {
        var wanted: [String: String] = [:]
        for pair in tags {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--tag \(pair): KEY=VALUE") }
            wanted[String(parts[0])] = String(parts[1])
        }
        return wanted
    }

    /// The nodes for `type`: an auction (with the os/arch of an ELF executable at `path`, when given).
    func chooseNodes(_ nex: NexClient, type: String, executable path: String?) async throws -> [String] {
        var request = AuctionRequest(workloadTypes: [type])
        let tags = try wantedTags()
        if !tags.isEmpty { request.tags = tags }
        if type == "native", let path, let platform = WorkloadSubmission.platform(ofExecutable: path) {
            request.os = platform.os
            request.arch = platform.arch
        }
        let chosen = try await nex.place(request, replicas: replicas, window: .milliseconds(Int64(auctionWait * 1000)))
        return chosen.map(\.nodeID)
    }
}

/// `nexctl run URL [NODE] [KEY=VALUE ...]`: deploys a workload whose artifact is already in place.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deploy a workload to a node, or to nodes chosen by auction.",
        discussion: """
            The artifact is nats://BUCKET/KEY (an object the node fetches) or file:///absolute/path \
            (a file on the node's host, also readable here to compute its SHA-256). KEY=VALUE pairs \
            become the workload's environment, sealed to the node's xkey. Without a node id, \
            --replicas nodes (default 1) are chosen by auction. Prints each workload id.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Artifact URL: nats://BUCKET/KEY or file:///absolute/path.") var url: String
    @Argument(help: "The node id (N...), optional, then environment variables, KEY=VALUE.") var arguments: [String] = []
    @Option(help: "File holding the issuer's nkey seed (signs the workload JWT).") var issuer: String
    @Option(help: "Workload name (letters, digits, '-' and '_').") var name: String
    @Option(help: "File holding the curve seed that seals the environment (default: publisher.xk in $NEX_HOME or ~/.nex).")
    var xkey: String?
    @OptionGroup var workload: WorkloadOptions
    @OptionGroup var placement: PlacementOptions

    /// A node id (never holds `=`) first, then the environment.
    var node: String? { arguments.first.flatMap { $0.contains("=") ? nil : $0 } }
    var environment: [String] { node == nil ? arguments : Array(arguments.dropFirst()) }

    func validate() throws {
        if node != nil, placement.replicas != 1 || !placement.tags.isEmpty {
            throw ValidationError("--replicas and --tag choose nodes by auction: name no node with them")
        }
    }

    func run() async throws {
        try await Nexctl.perform {
            let location = try ArtifactLocation(url)
            let environment = try WorkloadSubmission.parseEnvironment(self.environment)
            try WorkloadClaims.validateName(name)
            let issuer = try NexKeyStore.readNKey(self.issuer)
            let sender = try NexHome.sender(xkeyFile: xkey)
            let nex = try await global.connect()
            let hash = try await nex.artifactHash(of: location, jsDomain: workload.jsDomain)
            let submission = try workload.submission(name: name, location: location, artifactHash: hash,
                                                     environment: environment)
            let path: String? = if case .file(let path) = location { path } else { nil }
            let nodes: [String]
            if let node { nodes = [node] } else {
                nodes = try await placement.chooseNodes(nex, type: submission.type, executable: path)
            }
            for node in nodes {
                let response = try await nex.deploy(submission, namespace: global.namespace, node: node,
                                                    issuer: issuer, sender: sender)
                print(node == self.node ? response.id : "\(response.id) \(node)")
            }
            await nex.connection.close()
        }
    }
}
