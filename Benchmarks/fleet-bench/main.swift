// A fleet on a real three-server nats-server cluster (clustered JetStream), three nex-node
// processes of one nexus, each on its own server, driven by one client on a fourth connection:
//
//   fleet deploy_s                   100 workloads spread over the 3 nodes, one at a time:
//                                    auction (fewest workloads first) + deploy, one client
//   fleet workload_ls_ms p50/p99     fleet-wide workload ping with 300 workloads running: time
//                                    until the 3 nodes' answers (300 entries) are in
//   fleet reschedule_s               node SIGKILL -> its reschedulable service runs on another
//                                    node (workload_rescheduled), reschedule_after_seconds 2
//
// Usage: fleet-bench BIN_DIR WORKDIR   (see Benchmarks/fleet-bench.sh)
import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import NIOCore

@main
struct FleetBench {
    static let nodes = 3
    static let rescheduleAfter = 2

    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 3 else {
            FileHandle.standardError.write(Data("usage: fleet-bench BIN_DIR WORKDIR\n".utf8))
            exit(2)
        }
        let bin = arguments[1], work = arguments[2]
        let deploys = Int(ProcessInfo.processInfo.environment["BENCH_DEPLOYS"] ?? "") ?? 100
        let total = Int(ProcessInfo.processInfo.environment["BENCH_WORKLOADS"] ?? "") ?? 300

        let cluster = try await NATSCluster.start(size: nodes)
        defer { for server in cluster.servers { server.stop() } }
        let artifacts = work + "/artifacts"
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        let nexusSeed = try XKeyPair.generate().seed
        var fleet: [NodeRun] = []
        defer { for node in fleet { node.kill() } }
        for index in 0..<nodes {
            fleet.append(try NodeRun.start(bin: bin, work: work, index: index, server: cluster.servers[index].url,
                                           artifacts: artifacts, nexusSeed: nexusSeed))
        }

        var options = NATSClientOptions(servers: [cluster.servers[0].url])
        options.name = "fleet-bench"
        let client = try NATSClient(options: options)
        try await client.connect()
        let nex = NexClient(connection: client, timeout: .seconds(30))
        let ready = ContinuousClock.now + .seconds(30)
        while (try? await nex.pingAll(window: .seconds(1), expecting: nodes).count) != nodes {
            guard ContinuousClock.now < ready else { fatalError("the three nodes did not answer within 30 s") }
        }
        let issuer = try NKeyPair.generate(.account)
        let sender = try XKeyPair.generate()
        let sleeper = artifacts + "/sleeper.sh"
        try "#!/bin/sh\nexec sleep 3600\n".write(toFile: sleeper, atomically: true, encoding: .utf8)
        chmod(sleeper, 0o755)
        let hash = try ArtifactDigest.sha256Hex(ofFile: sleeper)

        /// Auction (all three bids, or a second) and deploy to the node with the fewest workloads.
        func place(_ name: String, reschedulable: Bool = false) async throws -> (node: String, run: RunResponse) {
            let chosen = try await nex.place(AuctionRequest(workloadTypes: ["native"]), window: .seconds(1), expecting: nodes)
            var submission = try WorkloadSubmission(name: name, location: .file(path: sleeper), artifactHash: hash,
                                                    essential: reschedulable)
            if reschedulable { submission.reschedulable = true }
            let run = try await nex.deploy(submission, namespace: "bench", node: chosen[0].nodeID, issuer: issuer, sender: sender)
            return (chosen[0].nodeID, run)
        }
        // Bids are collected until every node answered (the client knows the fleet's size here).

        // 1. 100 workloads, one client, auction + deploy each.
        for index in 0..<nodes { _ = try await place("warm\(index)") }  // each node's artifact cache
        let started = ContinuousClock.now
        var perNode: [String: Int] = [:]
        for index in 0..<deploys { perNode[try await place("w\(index)").node, default: 0] += 1 }
        let elapsed = started.duration(to: .now)
        let spread = perNode.values.sorted()
        report(String(format: "fleet deploy_s=%.2f (%d deploys, %.1f ms each: auction + deploy; per node %@)",
                      elapsed.seconds, deploys, elapsed.seconds * 1000 / Double(deploys),
                      spread.map(String.init).joined(separator: "/")))

        // 2. Workload ls with `total` workloads.
        for index in (deploys + nodes)..<total { _ = try await place("w\(index)") }
        var latencies: [Double] = []
        var entries = 0
        for _ in 0..<50 {
            let asked = ContinuousClock.now
            let replies = try await nex.workloadPing(namespace: "bench", window: .seconds(5), expecting: nodes)
            latencies.append(asked.duration(to: .now).seconds * 1000)
            entries = replies.map(\.runningMachines.count).reduce(0, +)
        }
        latencies.sort()
        report(String(format: "fleet workload_ls_ms p50=%.1f p99=%.1f (%d workloads on %d nodes, 50 asks)",
                      latencies[latencies.count / 2], latencies[latencies.count * 99 / 100], entries, nodes))

        // 3. SIGKILL the node of a reschedulable service.
        let events = try await client.subscribe(to: NexSubject.event(namespace: "bench", type: .workloadRescheduled))
        try await client.flush()
        let service = try await place("keeper", reschedulable: true)
        try await Task.sleep(for: .seconds(2))
        guard let victim = fleet.first(where: { $0.nodeID == service.node }) else { fatalError("no such node") }
        let killed = ContinuousClock.now
        victim.kill()
        var rescheduled: Duration?
        for await message in events where message.string.contains(service.run.id) {
            rescheduled = killed.duration(to: .now)
            break
        }
        report(String(format: "fleet reschedule_s=%.2f (SIGKILL -> workload_rescheduled; reschedule_after_seconds %d, target <= %d)",
                      rescheduled?.seconds ?? -1, rescheduleAfter, rescheduleAfter + 5))
        await client.close()
    }

    static func report(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}

/// One nex-node process of the benchmark's fleet.
final class NodeRun: Sendable {
    let process: Process
    let nodeID: String

    init(process: Process, nodeID: String) {
        self.process = process
        self.nodeID = nodeID
    }

    static func start(bin: String, work: String, index: Int, server: String, artifacts: String, nexusSeed: String) throws
        -> NodeRun
    {
        let directory = "\(work)/node\(index)"
        try FileManager.default.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let seedFile = directory + "/nexus.xk"
        try (nexusSeed + "\n").write(toFile: seedFile, atomically: true, encoding: .utf8)
        chmod(seedFile, 0o600)
        let config = """
            {"machine_pool_size": 4, "node_limits": {"max_workloads": 500}, "nexus": "bench",
             "nexus_xkey_seed_file": "\(seedFile)", "reschedule_after_seconds": \(FleetBench.rescheduleAfter),
             "state_replicas": 3}
            """
        try config.write(toFile: directory + "/node.json", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bin + "/nex-node")
        process.arguments = ["up", "-s", server, "--state-dir", directory + "/state", "--config", directory + "/node.json",
                             "--allow-file-root", artifacts]
        FileManager.default.createFile(atPath: directory + "/node.log", contents: nil)
        let log = FileHandle(forWritingAtPath: directory + "/node.log")
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let seedPath = directory + "/state/node.nk"
        for _ in 0..<200 where (try? String(contentsOfFile: seedPath, encoding: .utf8)) == nil {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let seed = try String(contentsOfFile: seedPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return NodeRun(process: process, nodeID: try NKeyPair(seed: seed).publicKey)
    }

    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
