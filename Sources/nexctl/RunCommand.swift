import ArgumentParser
import Foundation
import NATSWire
import NexControl

/// The options `run` and `devrun` share: what kind of workload, and how it runs.
struct WorkloadOptions: ParsableArguments {
    @Option(help: "Workload type: native, wasm or javascript.")
    var type: String = "native"
    @Option(name: .customLong("description"), help: "A description, shown by node info.")
    var workloadDescription: String?
    @Option(parsing: .unconditionalSingleValue,
            help: "Program arguments: one value is split on spaces (--argv \"-p 8080\"); repeat it to pass arguments as they are.")
    var argv: [String] = []
    @Flag(help: "Restart the service when it exits (native only).")
    var essential = false
    @Option(name: .customLong("trigger"), help: "A subject that triggers the function (wasm, javascript); repeatable.")
    var triggers: [String] = []
    @Option(name: .customLong("jsdomain"), help: "JetStream domain of the object store holding the artifact.")
    var jsDomain: String?

    func submission(name: String, location: ArtifactLocation, artifactHash: String, environment: [String: String])
        throws -> WorkloadSubmission
    {
        try WorkloadSubmission(
            name: name, type: type, location: location, artifactHash: artifactHash, environment: environment,
            argv: WorkloadSubmission.arguments(fromOptionValues: argv), description: workloadDescription,
            essential: essential, triggerSubjects: triggers, jsDomain: jsDomain)
    }
}

/// `nexctl run URL NODE [KEY=VALUE ...]`: deploys a workload whose artifact is already in place.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deploy a workload to one node.",
        discussion: """
            The artifact is nats://BUCKET/KEY (an object the node fetches) or file:///absolute/path \
            (a file on the node's host, also readable here to compute its SHA-256). KEY=VALUE pairs \
            become the workload's environment, sealed to the node's xkey. Prints the workload id.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Artifact URL: nats://BUCKET/KEY or file:///absolute/path.") var url: String
    @Argument(help: "The node id (N...).") var node: String
    @Argument(help: "Environment variables, KEY=VALUE.") var environment: [String] = []
    @Option(help: "File holding the issuer's nkey seed (signs the workload JWT).") var issuer: String
    @Option(help: "Workload name (letters, digits, '-' and '_').") var name: String
    @Option(help: "File holding the curve seed that seals the environment (default: publisher.xk in $NEX_HOME or ~/.nex).")
    var xkey: String?
    @OptionGroup var workload: WorkloadOptions

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
            let response = try await nex.deploy(submission, namespace: global.namespace, node: node,
                                                issuer: issuer, sender: sender)
            await nex.connection.close()
            print(response.id)
        }
    }
}
