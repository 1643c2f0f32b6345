import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import NIOCore
import Testing

/// Attacks on a real node, as a hostile deployer or tenant would make them (issue: "Trust"),
/// each asserting the safe outcome: the secret does not come back, the limit holds, the node
/// still serves. The node runs as the unprivileged ``NodeUser``.
@Suite(.serialized) struct TrustEndToEndTests {

    @Test func theNodeAndItsWorkloadsRunUnprivileged() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server) { node in
                try await withControlClient(server) { nex in
                    let logs = try await LogRecorder.start(nex)
                    let fixture = try WorkloadFixture(script: "#!/bin/sh\necho \"uid=$(id -u) caps=$(grep CapEff /proc/self/status | tr -d '\\t ')\"\nsleep 30\n")
                    _ = try await fixture.deploy(nex, node: node.nodeID, name: "whoami")
                    let line = try await logs.waitFor("uid=").text

                    let status = try String(contentsOfFile: "/proc/\(node.pid)/status", encoding: .utf8)
                    let uidLine = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }.map(String.init) ?? ""
                    let capabilities = status.split(separator: "\n").first { $0.hasPrefix("CapEff:") }.map(String.init) ?? ""
                    if NodeUser.dropsPrivileges {
                        #expect(uidLine.split(whereSeparator: \.isWhitespace).dropFirst().allSatisfy { $0 == "\(NodeUser.uid)" }, "\(uidLine)")
                    }
                    // The workload runs sandboxed, as a uid of its own: neither the node's nor root.
                    let workloadUID = line.firstMatch(of: #/^uid=(\d+) /#).flatMap { UInt32($0.1) }
                    #expect(workloadUID != nil && workloadUID != UInt32(NodeUser.uid) && workloadUID != 0, "\(line)")
                    #expect(capabilities.hasSuffix("0000000000000000"), "\(capabilities)")
                    // It trusts any issuer (no valid_issuers) and says so.
                    #expect(node.log.contains("valid_issuers is empty"), "\(node.log)")
                    #expect(line.hasSuffix("CapEff:0000000000000000"), "\(line)")

                    // nexctl, unprivileged too, reaches the node.
                    let command = NodeUser.command(try NodeUser.nexctl, ["node", "ls", "-s", server.url])
                    let listed = try await runCommand(command.executable, command.arguments, timeout: .seconds(15))
                    #expect(listed.status == 0 && listed.stdout.contains(node.nodeID), "status \(listed.status): \(listed.stdout)\n\(listed.stderr)")
                }
            }
        }
    }

    @Test func aDeployerCannotReadTheNodesFiles() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: #"{"workload_types": ["native", "javascript"]}"#)) { node in
                try await withControlClient(server) { nex in
                    let fixture = try WorkloadFixture()
                    let keeper = try await fixture.deploy(nex, node: node.nodeID, name: "keeper")
                    let info = try await nex.info(namespace: "default", node: node.nodeID)
                    let xkeyPath = node.stateDirectory + "/node.xk"
                    let secret = try String(contentsOfFile: xkeyPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                    let secretHash = ArtifactDigest.sha256Hex(Array(try Data(contentsOf: URL(fileURLWithPath: xkeyPath))))
                    let guess = ArtifactDigest.sha256Hex(Array("a guess".utf8))

                    func deploy(_ path: String, hash: String = guess, type: String = "native") async throws -> String {
                        var request = try WorkloadSubmission(name: "thief", location: .file(path: path), artifactHash: hash)
                            .deployRequest(issuer: fixture.issuer, sender: fixture.sender, targetNode: node.nodeID,
                                           targetXKey: info.publicXKey)
                        request.type = type
                        if type != "native" { request.triggerSubjects = ["thief.>"] }
                        return try await refusal { try await nex.deploy(namespace: "default", node: node.nodeID, request: request) }
                    }
                    func leaks(_ reply: String) -> Bool {
                        reply.contains(secretHash) || reply.contains(secret) || reply.contains(String(secret.dropFirst(2).prefix(12)))
                    }

                    // The node's own key, by path, by a path that climbs out of the allowed root, and
                    // through a symbolic link planted inside it.
                    let planted = try NodeUser.artifactDirectory(prefix: "nex-e2e-planted-")
                    let link = planted.appending("innocent")
                    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: xkeyPath)
                    let climbing = NodeUser.artifactRoot + "/../../../.." + xkeyPath
                    for path in [xkeyPath, climbing, link] {
                        for hash in [guess, secretHash] {
                            for type in ["native", "javascript"] {
                                let reply = try await deploy(path, hash: hash, type: type)
                                #expect(reply.contains("allowed_file_roots"), "\(path): \(reply)")
                                #expect(!leaks(reply), "\(path) as \(type): the reply carries the key or its hash: \(reply)")
                            }
                        }
                    }
                    // No oracle: a file that exists and one that does not get the same answer, by path and
                    // through links planted in the root.
                    let existing = try await deploy("/etc/passwd")
                    let absent = try await deploy("/etc/no-such-file")
                    #expect(existing.replacingOccurrences(of: "/etc/passwd", with: "X") == absent.replacingOccurrences(of: "/etc/no-such-file", with: "X"),
                            "\(existing) / \(absent)")
                    try FileManager.default.createSymbolicLink(atPath: planted.appending("to-passwd"), withDestinationPath: "/etc/passwd")
                    try FileManager.default.createSymbolicLink(atPath: planted.appending("to-nothing"), withDestinationPath: "/etc/no-such-file")
                    try FileManager.default.createSymbolicLink(atPath: planted.appending("to-etc"), withDestinationPath: "/etc")
                    try FileManager.default.createSymbolicLink(atPath: planted.appending("to-no-dir"), withDestinationPath: "/no-such-dir")
                    let answers = try await [planted.appending("to-passwd"), planted.appending("to-nothing"), planted.appending("to-etc/shadow"),
                                             planted.appending("to-etc/no-such-file"), planted.appending("to-no-dir/x")].asyncMap { path in
                        try await deploy(path).replacingOccurrences(of: path, with: "X")
                    }
                    #expect(Set(answers).count == 1 && answers[0].contains("allowed_file_roots"), "\(answers)")

                    // Inside the root, a wrong hash does not learn the real hash or the size.
                    let real = try fixture.hash
                    let size = try FileManager.default.attributesOfItem(atPath: fixture.path)[.size] as? Int ?? -1
                    let mismatch = try await deploy(fixture.path)
                    #expect(mismatch.contains("hash mismatch") && !mismatch.contains(real) && !mismatch.contains("\(size) bytes"), "\(mismatch)")

                    #expect(try await nex.ping(node: node.nodeID).runningMachines == 1)
                    #expect(try await nex.info(namespace: "default", node: node.nodeID).machines.map(\.id) == [keeper.id])
                }
            }
        }
    }

    @Test func aNodeWithoutFileRootsTakesNoFileArtifacts() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(fileRoots: [])) { node in
                try await withControlClient(server) { nex in
                    let fixture = try WorkloadFixture()
                    let reply = try await refusal { try await fixture.deploy(nex, node: node.nodeID, name: "local") }
                    #expect(reply.contains("allowed_file_roots"), "\(reply)")
                    #expect(try await nex.ping(node: node.nodeID).runningMachines == 0)
                }
            }
        }
    }

    @Test func aFileRootHoldingTheNodesKeysStopsTheStart() async throws {
        try await withNATSServer(jetStream: true) { server in
            let state = try TemporaryDirectory(prefix: "nex-e2e-state-")
            let stateDirectory = state.appending("node")
            for roots in [[state.path], [stateDirectory + "/agents"]] {
                try NodeUser.prepareStateDirectory(stateDirectory + "/agents")
                let node = try await NodeProcess.spawn(url: server.url, .init(stateDirectory: stateDirectory, fileRoots: roots))
                #expect(try await node.waitForExit() != 0)
                #expect(node.log.contains("allowed_file_roots") && node.log.contains("state directory"), "\(node.log)")
            }
        }
    }

    @Test func concurrentDeploysCannotPassMaxWorkloads() async throws {
        try await withNATSServer(jetStream: true) { server in
            let node = try await NodeProcess.start(server: server, .init(config: """
                {"node_limits": {"max_workloads": 2, "max_concurrent_deploys": 16}}
                """))
            try await withControlClient(server, timeout: .seconds(20)) { nex in
                let fixture = try WorkloadFixture()
                let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<8 {
                        group.addTask {
                            do {
                                _ = try await fixture.deploy(nex, node: node.nodeID, name: "flood-\(index)")
                                return true
                            } catch let error as NexControlError {
                                #expect("\(error)".contains("max_workloads"), "\(error)")
                                return false
                            }
                        }
                    }
                    return try await group.reduce(into: [Bool]()) { $0.append($1) }
                }
                #expect(outcomes.filter { $0 }.count == 2, "\(outcomes)")
                #expect(try await nex.ping(node: node.nodeID).runningMachines == 2)
            }
        }
    }

    @Test func deploysUnderWayAreBounded() async throws {
        try await withNATSServer(jetStream: true) { server in
            let node = try await NodeProcess.start(server: server, .init(config: """
                {"node_limits": {"max_concurrent_deploys": 1}}
                """))
            try await withControlClient(server, timeout: .seconds(20)) { nex in
                let fixture = try WorkloadFixture()
                let busy = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<6 {
                        group.addTask {
                            do {
                                _ = try await fixture.deploy(nex, node: node.nodeID, name: "burst-\(index)")
                                return false
                            } catch let error as NexControlError {
                                #expect("\(error)".contains("max_concurrent_deploys"), "\(error)")
                                return true
                            }
                        }
                    }
                    return try await group.reduce(into: [Bool]()) { $0.append($1) }
                }
                let refused = busy.filter { $0 }.count
                #expect(refused >= 1 && refused < 6, "\(busy)")
                #expect(try await nex.ping(node: node.nodeID).runningMachines == 6 - refused)
            }
        }
    }

    @Test func aDeployTokenStartsOneWorkloadEvenAfterARestart() async throws {
        try await withNATSServer(jetStream: true) { server in
            let state = try TemporaryDirectory(prefix: "nex-e2e-state-")
            let stateDirectory = state.appending("node")
            let first = try await NodeProcess.start(server: server, .init(stateDirectory: stateDirectory))
            try await withControlClient(server) { nex in
                let fixture = try WorkloadFixture()
                let info = try await nex.info(namespace: "default", node: first.nodeID)
                let request = try fixture.submission(name: "once")
                    .deployRequest(issuer: fixture.issuer, sender: fixture.sender, targetNode: first.nodeID, targetXKey: info.publicXKey)

                // Sent three times at once, then once more: one workload.
                let accepted = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for _ in 0..<3 {
                        group.addTask { (try? await nex.deploy(namespace: "default", node: first.nodeID, request: request)) != nil }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                #expect(accepted == 1)
                let again = try await refusal { try await nex.deploy(namespace: "default", node: first.nodeID, request: request) }
                #expect(again.contains("already used"), "\(again)")
                #expect(try await nex.ping(node: first.nodeID).runningMachines == 1)

                first.terminate()
                #expect(try await first.waitForExit() == 0)
                let second = try await NodeProcess.start(server: server, .init(stateDirectory: stateDirectory))
                #expect(second.nodeID == first.nodeID)
                let replayed = try await refusal { try await nex.deploy(namespace: "default", node: second.nodeID, request: request) }
                #expect(replayed.contains("already used"), "\(replayed)")
                // The node brings back the workload it ran (its state bucket), and that one only.
                try await waitFor(timeout: .seconds(10), "the workload comes back") {
                    (try? await nex.ping(node: second.nodeID).runningMachines) == 1
                }
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await nex.ping(node: second.nodeID).runningMachines == 1)
            }
        }
    }

    @Test func wildcardNamespacesReachNoOneElsesWorkloads() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server) { node in
                try await withControlClient(server) { nex in
                    let fixture = try WorkloadFixture()
                    let secretRun = try await fixture.deploy(nex, node: node.nodeID, name: "tenant-a-secret", namespace: "tenant-a")

                    for namespace in ["*", ">", "a*"] {
                        for subject in ["$NEX.INFO.\(namespace).\(node.nodeID)", "$NEX.WPING.\(namespace)"] {
                            let reply = try await nex.connection.request(ByteBuffer(), to: subject, timeout: .seconds(3))
                            let text = String(buffer: reply.payload)
                            #expect(text.contains("invalid namespace"), "\(subject): \(text)")
                            #expect(!text.contains(secretRun.id) && !text.contains("tenant-a-secret"), "\(subject) leaked: \(text)")
                        }
                    }
                    // A deploy into a wildcard namespace is refused before anything is read.
                    let info = try await nex.info(namespace: "default", node: node.nodeID)
                    let request = try fixture.submission(name: "wild")
                        .deployRequest(issuer: fixture.issuer, sender: fixture.sender, targetNode: node.nodeID, targetXKey: info.publicXKey)
                    let wild = try await refusal { try await nex.deploy(namespace: "*", node: node.nodeID, request: request) }
                    #expect(wild.contains("invalid namespace"), "\(wild)")
                    // Nor may a tenant take the node's own namespace, where its events and log lines go.
                    let systemRequest = try fixture.submission(name: "system-squatter")
                        .deployRequest(issuer: fixture.issuer, sender: fixture.sender, targetNode: node.nodeID, targetXKey: info.publicXKey)
                    let system = try await refusal { try await nex.deploy(namespace: "system", node: node.nodeID, request: systemRequest) }
                    #expect(system.contains("namespace 'system' is the node's own"), "\(system)")
                    #expect(try await nex.ping(node: node.nodeID).runningMachines == 1)
                }
            }
        }
    }

    @Test func aChattyWorkloadDoesNotHurtItsNeighboursOrTheNode() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: #"{"machine_pool_size": 2}"#)) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let events = try await EventRecorder.start(nex, namespace: "default")
                    let quietLogs = try await LogRecorder.start(nex, workloadName: "quiet")
                    let quiet = try await WorkloadFixture().deploy(nex, node: node.nodeID, name: "quiet")
                    _ = try await quietLogs.waitFor("tick ")
                    // 4 KB lines as fast as `yes` prints them (gigabytes a second).
                    let chattyFixture = try WorkloadFixture(script: "#!/bin/sh\nexec yes \"$(head -c 4000 /dev/zero | tr '\\0' x)\"\n")
                    let chatty = try await chattyFixture.deploy(nex, node: node.nodeID, name: "chatty")

                    try await Task.sleep(for: .seconds(8))
                    // The node serves, the neighbour still runs and still logs, nothing was restarted or killed.
                    #expect(node.isRunning)
                    #expect(try await nex.ping(node: node.nodeID).runningMachines == 2)
                    let ticks = quietLogs.texts.filter { $0.hasPrefix("tick ") }.count
                    try await Task.sleep(for: .seconds(1))
                    #expect(quietLogs.texts.filter { $0.hasPrefix("tick ") }.count > ticks, "the quiet workload's log stopped")
                    let machines = try await nex.info(namespace: "default", node: node.nodeID).machines
                    let quietInfo = try #require(machines.first { $0.id == quiet.id })
                    let chattyInfo = try #require(machines.first { $0.id == chatty.id })
                    #expect(quietInfo.state == "running" && quietInfo.logLinesDropped == nil, "\(quietInfo)")
                    #expect(chattyInfo.state == "running" && (chattyInfo.logLinesDropped ?? 0) > 10_000, "\(chattyInfo)")
                    #expect(!events.all.contains { $0.type == "workload_undeployed" }, "\(events.all.map(\.type))")
                    // A new deploy still goes through.
                    let late = try await WorkloadFixture().deploy(nex, node: node.nodeID, name: "late")
                    #expect(late.started)

                    let status = try String(contentsOfFile: "/proc/\(node.pid)/status", encoding: .utf8)
                    let rss = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
                        .flatMap { Int($0.split(whereSeparator: \.isWhitespace)[1]) } ?? -1
                    print("nex-node beside a flat-out printer: RSS \(rss / 1024) MiB, \(chattyInfo.logLinesDropped ?? 0) lines dropped in 8 s")
                    #expect(rss > 0 && rss < 400 * 1024, "nex-node RSS \(rss) kB")
                }
            }
        }
    }

    /// Every socket of the agent bus cut from outside (`ss -K`, as a kernel or a broker bug
    /// would): the node's own link is in process, so the node goes on serving, replaces the
    /// agents that lost their link, and takes new work. Unsandboxed agents dial the bus over
    /// loopback TCP, which `ss -K` can cut; sandboxed ones get socket pairs it cannot.
    @Test(.enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/ss"), "ss -K needs root"))
    func aNodeWhoseBusSocketsAreCutGoesOnServing() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: #"{"no_sandbox": true}"#)) { node in
                try await withControlClient(server) { nex in
                    let port = try #require(node.log.firstMatch(of: #/agent bus ready[^\n]*url=nats://127\.0\.0\.1:(\d+)/#)
                        .map { String($0.1) }, "\(node.log)")
                    let killed = try await runCommand("/usr/bin/ss", ["-K", "-t", "dport", "=", ":\(port)"])
                    #expect(killed.status == 0, "\(killed.stderr)")
                    try await Task.sleep(for: .seconds(1))
                    #expect(processIsAlive(node.pid))
                    _ = try await nex.ping(node: node.nodeID)
                    let late = try await WorkloadFixture().deploy(nex, node: node.nodeID, name: "after-the-cut")
                    #expect(late.started)
                }
            }
        }
    }

    /// A workload leaves descendants outside its process group, then kills its own agent, so
    /// the agent cannot end them: unsandboxed, the node, their subreaper, does; sandboxed, the
    /// agent is its sandbox's init and cannot be killed from inside, and stopping the workload
    /// ends everything in the sandbox.
    @Test(arguments: [false, true])
    func aWorkloadThatKillsItsAgentLeavesNothingBehind(sandboxed: Bool) async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: sandboxed ? nil : #"{"no_sandbox": true}"#)) { node in
                try await withControlClient(server) { nex in
                    let logs = try await LogRecorder.start(nex, workloadName: "parricide")
                    let marker = "nexorphan\(UInt32.random(in: 0...UInt32.max))"
                    let fixture = try WorkloadFixture(script: """
                        #!/bin/sh
                        setsid sh -c 'trap "" TERM HUP; while :; do sleep 1; done' \(marker)-setsid &
                        (setsid sh -c 'trap "" TERM HUP; while :; do sleep 1; done' \(marker)-double &) &
                        sleep 0.5
                        echo "escaped"
                        sleep 1
                        kill -9 $PPID
                        echo "killed my agent"
                        sleep 30
                        """)
                    let run = try await fixture.deploy(nex, node: node.nodeID, name: "parricide")
                    let escaped = try await logs.waitFor("escaped")
                    #expect(processes(withMarker: marker).count == 2)
                    if sandboxed {
                        let agent = try #require(pids(of: escaped)).ppid
                        try await logs.waitFor("killed my agent")
                        try await Task.sleep(for: .milliseconds(300))
                        #expect(processIsAlive(agent), "the sandbox's init ignores SIGKILL from inside")
                        _ = try await fixture.stop(nex, node: node.nodeID, id: run.id, name: "parricide")
                    }
                    try await waitForValue(timeout: .seconds(10), "the escaped descendants to be ended; alive: \(processes(withMarker: marker))") {
                        processes(withMarker: marker).isEmpty ? true : nil
                    }
                    #expect(node.isRunning)
                    #expect(try await nex.ping(node: node.nodeID).nodeID == node.nodeID)
                }
            }
        }
    }
}


extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
