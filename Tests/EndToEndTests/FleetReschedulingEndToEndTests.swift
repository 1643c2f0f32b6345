import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// Reschedulable essential services on a three-server cluster: nodes of one nexus share its
/// xkey, say they are alive every second, and take over the services of a node that is lost
/// or leaving, exactly once.
@Suite struct FleetReschedulingEndToEndTests {
    static let rescheduleAfter = 3

    /// A node of nexus `east` holding the nexus seed (a file only the node's user reads), with
    /// its state and liveness buckets R3 on the cluster.
    static func launch(nexusSeed: String, in directory: TemporaryDirectory, name: String) throws -> NodeProcess.Launch {
        let state = directory.appending(name)
        try NodeUser.prepareStateDirectory(state)
        let seedFile = state + "/nexus.xk"
        try Data((nexusSeed + "\n").utf8).write(to: URL(fileURLWithPath: seedFile))
        chmod(seedFile, 0o600)
        if NodeUser.dropsPrivileges { chown(seedFile, NodeUser.uid, NodeUser.gid) }
        let config = """
            {"nexus": "east", "nexus_xkey_seed_file": "\(seedFile)", "reschedule_after_seconds": \(rescheduleAfter),
             "state_replicas": 3}
            """
        return NodeProcess.Launch(config: config, stateDirectory: state)
    }

    /// Deploys the fixture as a reschedulable essential service (environment sealed to the nexus xkey).
    static func deployReschedulable(_ fixture: WorkloadFixture, _ nex: NexClient, node: String, name: String)
        async throws -> RunResponse
    {
        var submission = try fixture.submission(name: name, environment: ["GREETING": "moved along"], essential: true)
        submission.reschedulable = true
        return try await nex.deploy(submission, namespace: "default", node: node, issuer: fixture.issuer, sender: fixture.sender)
    }

    /// Where the workload runs, as the fleet says (workload ping).
    static func runningOn(_ nex: NexClient, id: String) async throws -> [String] {
        try await nex.runningWorkloads(namespace: "default", matching: id, window: .milliseconds(500)).map(\.nodeID)
    }

    /// A node running a reschedulable service is killed (SIGKILL): the service runs again, same
    /// id and environment, on exactly one of the two other nodes within
    /// `reschedule_after_seconds` + 5 s, announced by `workload_rescheduled`, and stays single.
    @Test func aLostNodesServiceRunsAgainOnExactlyOneOtherNode() async throws {
        try await withNATSCluster(size: 3) { cluster in
            let directory = try TemporaryDirectory(prefix: "nex-e2e-resched-")
            let seed = try XKeyPair.generate().seed
            let launches = try ["a", "b", "c"].map { try Self.launch(nexusSeed: seed, in: directory, name: $0) }
            try await withControlClient(cluster.servers[2]) { nex in
                let events = try await EventRecorder.start(nex, namespace: "default")
                let logs = try await LogRecorder.start(nex)
                let lost = try await NodeProcess.start(server: cluster.servers[0], launches[0])
                defer { lost.kill() }
                try await withNode(server: cluster.servers[1], launches[1]) { b in
                    try await withNode(server: cluster.servers[2], launches[2]) { c in
                        let pong = try await nex.ping(node: lost.nodeID)
                        #expect(pong.nexusXKey == (try XKeyPair(seed: seed)).publicKey)
                        let fixture = try WorkloadFixture()
                        let service = try await Self.deployReschedulable(fixture, nex, node: lost.nodeID, name: "keeper")
                        try await waitFor(timeout: .seconds(10), "the service runs on its first node") {
                            logs.all.contains { $0.id == service.id && $0.text.contains("greeting=moved along") }
                        }
                        // A plain service of the same node is not moved.
                        let plain = try await fixture.deploy(nex, node: lost.nodeID, name: "plain", essential: true)

                        lost.kill()
                        let killed = ContinuousClock.now
                        let moved = try await events.waitFor(NexEventType.workloadRescheduled,
                                                             timeout: .seconds(Int64(Self.rescheduleAfter + 5)))
                        let winner = try #require(moved.source.split(separator: "-").first.map(String.init))
                        #expect([b.nodeID, c.nodeID].contains(winner), "\(moved.source)")
                        #expect(moved.data["from_node"]?.stringValue == lost.nodeID)
                        #expect(moved.data["to_node"]?.stringValue == winner)
                        #expect(moved.data["workload_id"]?.stringValue == service.id)
                        try await waitFor(timeout: .seconds(Int64(Self.rescheduleAfter + 5)) - killed.duration(to: .now),
                                          "the service runs on \(winner)") {
                            (try? await Self.runningOn(nex, id: service.id)) == [winner]
                        }
                        // Opened by the new node: the environment sealed to the nexus xkey.
                        try await waitFor(timeout: .seconds(5), "its environment on the new node") {
                            logs.all.filter { $0.id == service.id && $0.text.contains("greeting=moved along") }.count >= 2
                        }
                        // Still once, a while later; the plain one went with its node.
                        try await Task.sleep(for: .seconds(Self.rescheduleAfter + 1))
                        #expect(try await Self.runningOn(nex, id: service.id) == [winner])
                        #expect(events.all.filter { $0.type == "workload_rescheduled" }.count == 1, "\(events.summary)")
                        #expect(try await Self.runningOn(nex, id: plain.id).isEmpty)
                    }
                }
            }
        }
    }

    /// `nexctl node lameduck NODE --delay 6s`: the node's reschedulable service moves to the other
    /// node of the nexus at once (the copy on the leaving node is stopped), its plain service
    /// runs until the node exits, by itself, when the delay is up.
    @Test func aLameDuckNodeHandsOverItsServiceAndExitsAfterTheDelay() async throws {
        try await withNATSCluster(size: 3) { cluster in
            let directory = try TemporaryDirectory(prefix: "nex-e2e-lameduck-")
            let seed = try XKeyPair.generate().seed
            let launches = try ["a", "b"].map { try Self.launch(nexusSeed: seed, in: directory, name: $0) }
            try await withControlClient(cluster.servers[2]) { nex in
                let events = try await EventRecorder.start(nex, namespace: "default")
                let leaving = try await NodeProcess.start(server: cluster.servers[0], launches[0])
                defer { leaving.kill() }
                try await withNode(server: cluster.servers[1], launches[1]) { staying in
                    let fixture = try WorkloadFixture()
                    let service = try await Self.deployReschedulable(fixture, nex, node: leaving.nodeID, name: "mover")
                    let plain = try await fixture.deploy(nex, node: leaving.nodeID, name: "stayer")

                    let nexctl = try Executables.nexctl
                    let asked = ContinuousClock.now
                    let answer = try await runCommand(
                        nexctl, ["node", "lameduck", leaving.nodeID, "--delay", "6s", "-s", cluster.servers[2].url])
                    #expect(answer.status == 0, "\(answer.stderr)")
                    #expect(answer.stdout.contains("exits when its workloads are done, or in 6s"), "\(answer.stdout)")

                    let moved = try await events.waitFor(NexEventType.workloadRescheduled, timeout: .seconds(5))
                    #expect(moved.source == "\(staying.nodeID)-\(service.id)")
                    #expect(moved.data["reason"]?.stringValue?.contains("leaving") == true, "\(moved.data)")
                    try await waitFor(timeout: .seconds(5), "the service runs only on the staying node") {
                        (try? await Self.runningOn(nex, id: service.id)) == [staying.nodeID]
                    }
                    #expect(try await Self.runningOn(nex, id: plain.id) == [leaving.nodeID])
                    let status = try await leaving.waitForExit(timeout: .seconds(15))
                    #expect(status == 0, "\(leaving.log.split(separator: "\n").filter { !$0.contains("nex-agent") }.suffix(30).joined(separator: "\n"))")
                    #expect(asked.duration(to: .now) >= .seconds(5), "it waited for its plain service")
                    #expect(try await Self.runningOn(nex, id: service.id) == [staying.nodeID])
                }
            }
        }
    }

    /// A node without the nexus key refuses a reschedulable deploy, naming why; nexctl refuses
    /// `--reschedule` without `--essential`.
    @Test func reschedulableDeploysNeedTheNexusKeyAndAnEssentialService() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: #"{"nexus": "east"}"#)) { node in
                try await withControlClient(server) { nex in
                    let fixture = try WorkloadFixture()
                    let info = try await nex.info(namespace: "default", node: node.nodeID)
                    #expect(info.nexusXKey == nil)
                    var submission = try fixture.submission(name: "svc", essential: true)
                    submission.reschedulable = true
                    var request = try submission.deployRequest(issuer: fixture.issuer, sender: fixture.sender,
                                                               targetNode: node.nodeID, targetXKey: info.publicXKey)
                    let error = await #expect(throws: NexControlError.self) {
                        try await nex.deploy(namespace: "default", node: node.nodeID, request: request)
                    }
                    #expect("\(error.map { "\($0)" } ?? "")".contains("no nexus xkey (nexus_xkey_seed_file)"))
                    request.essential = nil
                    let notEssential = await #expect(throws: NexControlError.self) {
                        try await nex.deploy(namespace: "default", node: node.nodeID, request: request)
                    }
                    #expect("\(notEssential.map { "\($0)" } ?? "")".contains("only essential native services"))
                    #expect(try await nex.ping(node: node.nodeID).runningMachines == 0)
                }
                let file = try WorkloadFixture().path
                let nexctl = try Executables.nexctl
                let refused = try await runCommand(nexctl, ["run", "file://" + file, node.nodeID, "--reschedule",
                                                            "--issuer", "/dev/null", "--name", "x", "-s", server.url])
                #expect(refused.status != 0 && refused.stderr.contains("--reschedule is for essential services"), "\(refused.stderr)")
            }
        }
    }
}
