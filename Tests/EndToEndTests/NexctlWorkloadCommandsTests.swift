import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import NexWorkloads
import Synchronization
import Testing

/// The real `nexctl` binary's workload commands (`keys gen`, `run`, `devrun`, `stop`, `logs`,
/// `node probe`) against a real nats-server with JetStream. The node is a ``ResponderNode``
/// served by NexControl's ``ControlServer``: it records what nexctl sends and checks it with
/// the same claims and sealing code a node uses. (Deploying to a real `nex-node` is tested
/// where the node can run workloads.)
@Suite struct NexctlWorkloadCommandsTests {
    // MARK: keys gen

    @Test func keysGenWritesPrivateFilesAndNeverOverwrites() async throws {
        let directory = try TemporaryDirectory(prefix: "nexctl-keys-")
        let nexctl = try Executables.nexctl
        let issuerPath = directory.appending("issuer.nk")

        let issuer = try await runCommand(nexctl, ["keys", "gen", "issuer", "--out", issuerPath])
        #expect(issuer.status == 0, "\(issuer.stderr)")
        #expect(issuer.stdout.isEmpty, "the seed goes to the file only: \(issuer.stdout)")
        #expect(try mode(issuerPath) == 0o600)
        let pair = try NKeyPair(seedFile: issuerPath)
        #expect(pair.type == .account)
        #expect(issuer.stderr.contains(pair.publicKey), "\(issuer.stderr)")

        let again = try await runCommand(nexctl, ["keys", "gen", "xkey", "--out", issuerPath])
        #expect(again.status == 1)
        #expect(oneErrorLine(again.stderr)?.contains("already exists") == true, "\(again.stderr)")
        #expect(try NKeyPair(seedFile: issuerPath).publicKey == pair.publicKey, "the file is untouched")

        let xkey = try await runCommand(nexctl, ["keys", "gen", "xkey"])
        #expect(xkey.status == 0, "\(xkey.stderr)")
        let curve = try XKeyPair(seed: xkey.stdout)
        #expect(xkey.stderr.contains(curve.publicKey), "\(xkey.stderr)")

        let unknown = try await runCommand(nexctl, ["keys", "gen", "operator"])
        #expect(unknown.status != 0)
    }

    // MARK: devrun

    @Test func devrunUploadsStopsTheOldOneAndDeploysSignedAndSealed() async throws {
        try await withResponder { server, node, url in
            let home = try TemporaryDirectory(prefix: "nexctl-home-")
            let nexHome = home.appending("nex")
            let environment = ChildEnvironment.base().merging(["NEX_HOME": nexHome]) { _, new in new }
            let work = try TemporaryDirectory(prefix: "nexctl-devrun-")
            let file = work.appending("my.app")
            let content = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
            try Data(content).write(to: URL(fileURLWithPath: file))
            let nexctl = try Executables.nexctl

            let first = try await runCommand(
                nexctl, ["devrun", file, "GREETING=hello", "SECRET=s=3", "--argv", "-p 8080", "-s", url, "--timeout", "3",
                         "--auction-wait", "2"],
                environment: environment, timeout: .seconds(30))
            #expect(first.status == 0, "\(first.stderr)")
            #expect(first.stdout.contains("node: \(node.nodeID)"), "\(first.stdout)")
            let firstDeploy = try #require(node.deployments.first)
            #expect(first.stdout.contains("workload: \(firstDeploy.id) (my-app)"), "\(first.stdout)")
            #expect(first.stderr.contains("uploaded NEXCLIFILES/myapp"), "\(first.stderr)")

            // The keys were created in $NEX_HOME, private.
            #expect(try mode(nexHome) == 0o700)
            #expect(try mode(nexHome + "/issuer.nk") == 0o600)
            #expect(try mode(nexHome + "/publisher.xk") == 0o600)
            let issuer = try NKeyPair(seedFile: nexHome + "/issuer.nk")
            let publisher = try NexKeyStore.readXKey(nexHome + "/publisher.xk")
            #expect(issuer.type == .account)

            // The object is the file, in a bucket created with the default limit.
            let client = try await connect(server)
            let store = try await client.jetStream().objectStore("NEXCLIFILES")
            #expect(try await store.get("myapp").data == content)
            #expect(try await store.status().config.maxBytes == 100 * 1024 * 1024)

            // The deploy: JWT signed by the issuer with the file's hash; env sealed to the node.
            let request = firstDeploy.request
            #expect(request.type == "native")
            #expect(request.location == "nats://NEXCLIFILES/myapp")
            #expect(request.targetNode == node.nodeID)
            #expect(request.argv == ["-p", "8080"])
            #expect(request.senderPublicKey == publisher.publicKey)
            let claims = try WorkloadClaims.verifyDeploy(request.workloadJWT, validIssuers: [issuer.publicKey])
            #expect(claims.name == "my-app")
            #expect(claims.artifactHash == ArtifactDigest.sha256Hex(content))
            try claims.checkArtifact(sha256Hex: try ArtifactDigest.sha256Hex(ofFile: file))
            #expect(try EnvironmentSealing.open(request.environment, senderPublicKey: request.senderPublicKey,
                                                recipient: node.xkey) == ["GREETING": "hello", "SECRET": "s=3"])
            #expect(!request.environment.contains("hello"))

            // Again: the running workload of the same name is stopped first, with a valid stop JWT.
            let second = try await runCommand(
                nexctl, ["devrun", file, "-s", url, "--auction-wait", "2"], environment: environment, timeout: .seconds(30))
            #expect(second.status == 0, "\(second.stderr)")
            #expect(node.stops.map(\.workloadID) == [firstDeploy.id], "\(second.stderr)")
            #expect(second.stderr.contains("stopped previous workload \(firstDeploy.id)"), "\(second.stderr)")
            #expect(second.stderr.contains("NEXCLIFILES/myapp is up to date"), "unchanged file, no upload: \(second.stderr)")
            #expect(node.deployments.count == 2)
            #expect(node.running.map(\.name) == ["my-app"])

            // --no-stop keeps it. A changed file is uploaded again.
            let changed = content.reversed() + [1, 2, 3]
            try Data(changed).write(to: URL(fileURLWithPath: file))
            let third = try await runCommand(
                nexctl, ["devrun", file, "--no-stop", "--name", "other_name", "-s", url, "--auction-wait", "2"],
                environment: environment, timeout: .seconds(30))
            #expect(third.status == 0, "\(third.stderr)")
            #expect(node.stops.count == 1)
            #expect(node.running.map(\.name).sorted() == ["my-app", "other_name"])
            #expect(try await store.get("myapp").data == changed)
            #expect(node.deployments.last?.claims.artifactHash == ArtifactDigest.sha256Hex(changed))
            await client.close()
        }
    }

    @Test func devrunWithoutBiddersFails() async throws {
        try await withResponder(workloadTypes: ["native"]) { _, _, url in
            let home = try TemporaryDirectory(prefix: "nexctl-home-")
            let work = try TemporaryDirectory(prefix: "nexctl-devrun-")
            let file = try work.write("(subject, payload) => payload", to: "fn.js")
            let result = try await runCommand(
                try Executables.nexctl,
                ["devrun", file, "--type", "javascript", "--trigger", "fn.>", "-s", url, "--auction-wait", "0.3"],
                environment: ChildEnvironment.base().merging(["NEX_HOME": home.path]) { _, new in new })
            #expect(result.status == 1)
            #expect(oneErrorLine(result.stderr)?.contains("no node") == true, "\(result.stderr)")
        }
    }

    // MARK: run

    @Test func runFileAndObjectArtifacts() async throws {
        try await withResponder { server, node, url in
            let keys = try TemporaryDirectory(prefix: "nexctl-keys-")
            let issuer = try NKeyPair.generate(.account)
            let sender = try XKeyPair.generate()
            let issuerFile = try keys.write(issuer.seed, to: "issuer.nk")
            let xkeyFile = try keys.write(sender.seed, to: "sender.xk")
            let artifact = try keys.write("#!/bin/sh\necho hi\n", to: "echo.sh")
            let nexctl = try Executables.nexctl
            let common = ["--issuer", issuerFile, "--xkey", xkeyFile, "-s", url]

            let fromFile = try await runCommand(
                nexctl, ["run", "file://" + artifact, node.nodeID, "A=1", "--name", "echo", "--essential",
                         "--argv", "one two", "--description", "says hi", "--memory", "64M", "--processes", "32",
                         "--open-files", "100", "--cpu", "500", "--network", "none"] + common)
            #expect(fromFile.status == 0, "\(fromFile.stderr)")
            let deployed = try #require(node.deployments.last)
            #expect(fromFile.stdout == deployed.id + "\n")
            #expect(deployed.request.location == "file://" + artifact)
            #expect(deployed.request.essential == true)
            #expect(deployed.request.argv == ["one", "two"])
            #expect(deployed.request.description == "says hi")
            #expect(deployed.request.limits == ResourceLimits(memoryBytes: 64 << 20, openFiles: 100, processes: 32, cpuMillicores: 500))
            #expect(deployed.request.network == WorkloadNetwork.none)
            #expect(deployed.request.senderPublicKey == sender.publicKey)
            #expect(deployed.claims.issuer == issuer.publicKey)
            #expect(deployed.claims.artifactHash == (try ArtifactDigest.sha256Hex(ofFile: artifact)))
            #expect(deployed.environment == ["A": "1"])

            // nats://: the hash comes from the object's digest.
            let client = try await connect(server)
            let content = Array("(subject, payload) => payload".utf8)
            let store = try await client.jetStream().createObjectStore(ObjectStoreConfig(bucket: "FUNCS"))
            try await store.put("fn", data: content)
            await client.close()
            let fromObject = try await runCommand(
                nexctl, ["run", "nats://FUNCS/fn", node.nodeID, "--name", "fn", "--type", "javascript",
                         "--trigger", "fn.>", "--trigger", "fn2.*"] + common)
            #expect(fromObject.status == 0, "\(fromObject.stderr)")
            let function = try #require(node.deployments.last)
            #expect(function.claims.artifactHash == ArtifactDigest.sha256Hex(content))
            #expect(function.request.type == "javascript")
            #expect(function.request.triggerSubjects == ["fn.>", "fn2.*"])

            // The node's refusal is the error line.
            let refused = try await runCommand(
                nexctl, ["run", "file://" + artifact, node.nodeID, "--name", "refuse-me"] + common)
            #expect(refused.status == 1)
            #expect(oneErrorLine(refused.stderr)?.contains("workload refused by the test node") == true, "\(refused.stderr)")

            let missing = try await runCommand(nexctl, ["run", "nats://FUNCS/none", node.nodeID, "--name", "x"] + common)
            #expect(missing.status == 1)
            #expect(oneErrorLine(missing.stderr)?.contains("none") == true, "\(missing.stderr)")

            for (flag, value) in [("--memory", "lots"), ("--memory", "0"), ("--network", "bridge")] {
                let bad = try await runCommand(nexctl, ["run", "file://" + artifact, node.nodeID, "--name", "x", flag, value] + common)
                #expect(bad.status != 0 && bad.stderr.contains("\(flag) \(value)"), "\(flag) \(value): \(bad.stderr)")
            }

            let badPair = try await runCommand(
                nexctl, ["run", "file://" + artifact, node.nodeID, "NOTAPAIR", "--name", "x"] + common)
            #expect(badPair.status == 1)
            #expect(oneErrorLine(badPair.stderr)?.contains("NOTAPAIR") == true, "\(badPair.stderr)")
        }
    }

    // MARK: stop, probe

    @Test func stopFindsTheNameAndProbeLists() async throws {
        try await withResponder { _, node, url in
            let keys = try TemporaryDirectory(prefix: "nexctl-keys-")
            let issuer = try NKeyPair.generate(.account)
            let issuerFile = try keys.write(issuer.seed, to: "issuer.nk")
            let artifact = try keys.write("binary", to: "svc")
            let nexctl = try Executables.nexctl
            for name in ["alpha", "beta"] {
                let run = try await runCommand(
                    nexctl, ["run", "file://" + artifact, node.nodeID, "--name", name, "--issuer", issuerFile, "-s", url])
                #expect(run.status == 0, "\(run.stderr)")
            }
            let alpha = try #require(node.running.first { $0.name == "alpha" })

            let table = try await runCommand(nexctl, ["node", "probe", "-s", url, "--timeout", "2"])
            #expect(table.status == 0, "\(table.stderr)")
            let rows = table.stdout.split(separator: "\n")
            #expect(rows.first?.hasPrefix("NODE") == true)
            #expect(rows.contains { $0.contains(alpha.id) && $0.contains("alpha") && $0.contains(node.nodeID) }, "\(table.stdout)")
            let json = try await runCommand(nexctl, ["node", "probe", "--workload", "beta", "--json", "-s", url, "--timeout", "2"])
            let found = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
            #expect(found.map { $0["name"] as? String } == ["beta"])
            #expect(found.first?["node_id"] as? String == node.nodeID)

            let stop = try await runCommand(
                nexctl, ["stop", node.nodeID, alpha.id, "--issuer", issuerFile, "-s", url, "--timeout", "2"])
            #expect(stop.status == 0, "\(stop.stderr)")
            #expect(stop.stdout.contains("stopped workload \(alpha.id) (alpha)"), "\(stop.stdout)")
            #expect(node.running.map(\.name) == ["beta"])

            // Another issuer may not stop it; the node says why.
            let beta = try #require(node.running.first)
            let otherFile = try keys.write(try NKeyPair.generate(.account).seed, to: "other.nk")
            let foreign = try await runCommand(
                nexctl, ["stop", node.nodeID, beta.id, "--name", "beta", "--issuer", otherFile, "-s", url])
            #expect(foreign.status == 1)
            #expect(oneErrorLine(foreign.stderr)?.contains("iss") == true, "\(foreign.stderr)")

            let unknown = try await runCommand(
                nexctl, ["stop", node.nodeID, "nosuchid", "--issuer", issuerFile, "-s", url, "--timeout", "0.5"])
            #expect(unknown.status == 1)
            #expect(oneErrorLine(unknown.stderr)?.contains("nosuchid") == true, "\(unknown.stderr)")
        }
    }

    // MARK: logs

    @Test func logsPrintsMatchingLinesAndFollows() async throws {
        try await withNATSServer(jetStream: false) { server in
            let publisher = try await connect(server)
            let nexctl = try Executables.nexctl
            let record = LogRecord(text: "hello from echo\n", level: 2, id: "w1")
            let other = LogRecord(text: "from elsewhere", level: 2, id: "w9")
            let publishing = Task {
                while !Task.isCancelled {
                    try? await publisher.publish(Array(try JSONEncoder().encode(record)),
                                                 to: NexSubject.logs(namespace: "default", node: "NA", workloadName: "echo", workloadID: "w1"))
                    try? await publisher.publish(Array(try JSONEncoder().encode(other)),
                                                 to: NexSubject.logs(namespace: "default", node: "NB", workloadName: "web", workloadID: "w9"))
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            defer { publishing.cancel() }

            let once = try await runCommand(nexctl, ["logs", "--node", "NA", "-s", server.url, "--timeout", "3"])
            #expect(once.status == 0, "\(once.stderr)")
            let lines = once.stdout.split(separator: "\n")
            #expect(!lines.isEmpty)
            #expect(lines.allSatisfy { $0.hasSuffix(" NA echo: hello from echo") }, "\(once.stdout)")

            // --follow runs until interrupted.
            let directory = try TemporaryDirectory(prefix: "nexctl-logs-")
            let outPath = directory.appending("stdout")
            let process = try ChildProcess(
                executable: nexctl, arguments: ["logs", "--workload", "web", "--follow", "--json", "-s", server.url],
                environment: ChildEnvironment.base(), outputPath: outPath, errorPath: directory.appending("stderr"))
            try await waitFor(timeout: .seconds(10), "nexctl logs --follow prints lines") {
                ((try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "").split(separator: "\n").count >= 3
            }
            #expect(process.isRunning, "--follow keeps running past --timeout")
            _ = await process.terminate(grace: .seconds(5))
            let followed = try String(contentsOfFile: outPath, encoding: .utf8).split(separator: "\n")
            for line in followed {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                #expect(object["node_id"] as? String == "NB")
                #expect(object["workload_id"] as? String == "w9")
                #expect(object["text"] as? String == "from elsewhere")
            }
            await publisher.close()
        }
    }
}

// MARK: - Responder

/// A node made of NexControl's ``ControlServer`` and a handler that runs nothing: it bids in
/// auctions, answers info and workload pings, and records and checks deploys and stops.
final class ResponderNode: NodeControlHandler {
    struct Deployment: Sendable {
        var id: String
        var request: DeployRequest
        var claims: WorkloadClaims
        var environment: [String: String]
    }

    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    private struct State {
        var deployments: [Deployment] = []
        var running: [String: Deployment] = [:]
        var stops: [StopRequest] = []
        var counter = 0
    }

    let nodeID: String
    let xkey: XKeyPair
    let workloadTypes: [String]
    private let state = Mutex(State())

    init(workloadTypes: [String]) throws {
        nodeID = try NKeyPair.generate(.server).publicKey
        xkey = try XKeyPair.generate()
        self.workloadTypes = workloadTypes
    }

    var deployments: [Deployment] { state.withLock { $0.deployments } }
    var stops: [StopRequest] { state.withLock { $0.stops } }
    /// Running workloads, sorted by id.
    var running: [WorkloadPingResponse.Machine] {
        state.withLock { state in
            state.running.values.sorted { $0.id < $1.id }.map {
                .init(id: $0.id, namespace: "default", name: $0.claims.name, type: $0.request.type)
            }
        }
    }

    private var tags: [String: String] { ["nex.os": "linux", "nex.arch": "amd64", "node_name": "responder"] }

    func ping() async -> PingResponse {
        PingResponse(nodeID: nodeID, version: "0.0.0-test", uptime: "1s", targetXKey: xkey.publicKey, tags: tags,
                     runningMachines: running.count)
    }

    func workloadPing(namespace: String, workload: String?) async -> WorkloadPingResponse? {
        let matching = running.filter { namespace == "default" && (workload == nil || $0.id == workload || $0.name == workload) }
        guard !matching.isEmpty else { return nil }
        return WorkloadPingResponse(nodeID: nodeID, targetXKey: xkey.publicKey, version: "0.0.0-test", tags: tags,
                                    uptime: "1s", runningMachines: matching)
    }

    func auction(_ request: AuctionRequest) async -> PingResponse? {
        if let os = request.os, os != "linux" { return nil }
        for type in request.workloadTypes ?? [] where !workloadTypes.contains(type) { return nil }
        return await ping()
    }

    func info(namespace: String) async throws -> InfoResponse {
        InfoResponse(version: "0.0.0-test", uptime: "1s", publicXKey: xkey.publicKey, tags: tags, memory: nil,
                     machines: [], supportedWorkloadTypes: workloadTypes)
    }

    func deploy(namespace: String, request: DeployRequest) async throws -> RunResponse {
        let environment = try EnvironmentSealing.open(request.environment, senderPublicKey: request.senderPublicKey,
                                                      recipient: xkey)
        let claims = try WorkloadClaims.verifyDeploy(request.workloadJWT)
        if claims.name == "refuse-me" { throw Refusal(description: "workload refused by the test node") }
        let deployment = state.withLock { state in
            state.counter += 1
            let deployment = Deployment(id: "w\(state.counter)", request: request, claims: claims, environment: environment)
            state.deployments.append(deployment)
            state.running[deployment.id] = deployment
            return deployment
        }
        return RunResponse(started: true, id: deployment.id, issuer: claims.issuer, name: claims.name)
    }

    func stop(namespace: String, request: StopRequest) async throws -> StopResponse {
        guard let deployed = state.withLock({ $0.running[request.workloadID] }) else {
            throw Refusal(description: "No such workload")
        }
        let stop = try deployed.claims.verifyStop(request.workloadJWT)
        state.withLock { state in
            state.stops.append(request)
            state.running[request.workloadID] = nil
        }
        return StopResponse(stopped: true, id: request.workloadID, issuer: stop.issuer, name: stop.name)
    }

    func lameDuck(_ request: LameDuckRequest) async throws -> LameDuckResponse {
        LameDuckResponse(nodeID: nodeID, success: true)
    }
}

/// Starts a nats-server with JetStream and a ``ResponderNode`` served on it, waits until it
/// answers, and runs `body` with the server, the node and the server's URL.
private func withResponder(
    workloadTypes: [String] = ["native", "wasm", "javascript"],
    _ body: (NATSServer, ResponderNode, String) async throws -> Void
) async throws {
    try await withNATSServer { server in
        let node = try ResponderNode(workloadTypes: workloadTypes)
        let nodeClient = try await connect(server)
        let probe = NexClient(connection: try await connect(server), timeout: .seconds(1))
        let serving = Task {
            try await ControlServer(nodeID: node.nodeID, client: nodeClient, handler: node,
                                    logger: nodeClient.options.logger).run()
        }
        do {
            _ = try await waitForValue(timeout: .seconds(10), "responder \(node.nodeID) answers") {
                try? await probe.ping(node: node.nodeID)
            }
            try await body(server, node, server.url)
        } catch {
            serving.cancel()
            await nodeClient.close()
            await probe.connection.close()
            throw error
        }
        serving.cancel()
        await nodeClient.close()
        await probe.connection.close()
    }
}

private func connect(_ server: NATSServer) async throws -> NATSClient {
    let client = try NATSClient(options: NATSClientOptions(servers: [server.url]))
    try await client.connect()
    return client
}

private func mode(_ path: String) throws -> Int {
    ((try FileManager.default.attributesOfItem(atPath: path))[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

/// The only line of `stderr` when it is one `nexctl: ...` line, else nil.
private func oneErrorLine(_ stderr: String) -> String? {
    let lines = stderr.split(separator: "\n", omittingEmptySubsequences: true)
    guard lines.count == 1, lines[0].hasPrefix("nexctl: ") else { return nil }
    return String(lines[0])
}
