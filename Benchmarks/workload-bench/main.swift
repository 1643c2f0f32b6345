// Measures native workloads on a running nex-node (started by Benchmarks/workload-bench.sh):
//
//   deploy_p50_ms / deploy_p99_ms   DEPLOY sent -> workload_deployed received, warm pool,
//                                   cached artifact, 50 deploys           (target p50 < 30)
//   node_rss_mb / agent_rss_max_mb  with 100 workloads running            (< 60 / < 12 each)
//   log_lines_per_s                 one workload printing 200,000 lines, one subscriber
//                                                                           (target 50,000)
//
//   (workload-bench.sh runs it twice: sandboxed, the default, then on a node with
//    no_sandbox: true, BENCH_LABEL=unsandboxed BENCH_SKIP_LOGS=1; target: the sandbox adds
//    at most 10 ms at p50)
//
// Usage: workload-bench NATS_URL NODE_ID NODE_PID WORKDIR
import Foundation
import NATSWire
import NexControl
import NIOCore
import Synchronization
import BenchSupport

final class Progress: Sendable {
    let count = Atomic<Int>(0)
}

@main
struct WorkloadBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 5, let nodePID = Int32(arguments[3]) else {
            FileHandle.standardError.write(Data("usage: workload-bench NATS_URL NODE_ID NODE_PID WORKDIR\n".utf8))
            exit(2)
        }
        let url = arguments[1], node = arguments[2], work = arguments[4]
        let deploys = Int(ProcessInfo.processInfo.environment["BENCH_DEPLOYS"] ?? "") ?? 50
        let concurrent = Int(ProcessInfo.processInfo.environment["BENCH_WORKLOADS"] ?? "") ?? 100
        let lines = Int(ProcessInfo.processInfo.environment["BENCH_LOG_LINES"] ?? "") ?? 200_000
        label = ProcessInfo.processInfo.environment["BENCH_LABEL"] ?? "sandboxed"
        let skipLogs = ProcessInfo.processInfo.environment["BENCH_SKIP_LOGS"] == "1"

        var options = NATSClientOptions(servers: [url])
        options.name = "workload-bench"
        options.subscriptionPendingMessages = 4 * 1024 * 1024
        let client = try NATSClient(options: options)
        try await client.connect()
        let nex = NexClient(connection: client, timeout: .seconds(30))
        let issuer = try NKeyPair.generate(.account)
        let sender = try XKeyPair.generate()

        func artifact(_ name: String, _ script: String) throws -> (path: String, hash: String) {
            let path = "\(work)/\(name).sh"
            try script.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
            return (path, try ArtifactDigest.sha256Hex(ofFile: path))
        }
        func deploy(_ name: String, _ file: (path: String, hash: String)) async throws -> RunResponse {
            try await nex.deploy(
                try WorkloadSubmission(name: name, location: .file(path: file.path), artifactHash: file.hash),
                namespace: "bench", node: node, issuer: issuer, sender: sender)
        }
        func stop(_ id: String, _ name: String) async throws {
            _ = try await nex.stopWorkload(namespace: "bench", node: node, id: id, name: name, issuer: issuer)
        }

        // 1. Deploy latency.
        let sleeper = try artifact("sleeper", "#!/bin/sh\nexec sleep 3600\n")
        let deployed = try await client.subscribe(to: NexSubject.event(namespace: "bench", type: .workloadDeployed))
        try await client.flush()
        let warmup = try await deploy("warmup", sleeper)  // fills the cache
        _ = await next(deployed)
        try await stop(warmup.id, "warmup")
        try await Task.sleep(for: .milliseconds(500))  // the pool refills
        var latencies: [Double] = []
        for index in 0..<deploys {
            let started = ContinuousClock.now
            let run = try await deploy("lat\(index)", sleeper)
            while let event = await next(deployed) {
                if event.contains(run.id) { break }
            }
            latencies.append(Double(started.duration(to: .now).components.attoseconds) / 1e15
                             + Double(started.duration(to: .now).components.seconds) * 1000)
            try await stop(run.id, "lat\(index)")
            try await Task.sleep(for: .milliseconds(100))  // let the pool refill: measure the warm path
        }
        latencies.sort()
        report(String(format: "workloads deploy_p50_ms=%.1f deploy_p99_ms=%.1f (n=%d, warm pool, cached artifact)",
                     latencies[latencies.count / 2], latencies[min(latencies.count - 1, latencies.count * 99 / 100)],
                     latencies.count))

        // 2. Many workloads at once.
        var running: [(String, String)] = []
        let concurrentStart = ContinuousClock.now
        for index in 0..<concurrent {
            let run = try await deploy("many\(index)", sleeper)
            running.append((run.id, "many\(index)"))
        }
        let took = concurrentStart.duration(to: .now)
        try await Task.sleep(for: .seconds(2))
        let nodeRSS = ProcessProbe.rssKB(nodePID)
        let agentPIDs = ProcessProbe.children(of: nodePID, command: "nex-agent")
        let agents = agentPIDs.map(ProcessProbe.rssKB)
        let agentMax = agents.max() ?? 0
        let agentAvg = agents.isEmpty ? 0 : agents.reduce(0, +) / agents.count
        // RSS counts the shared library pages every agent maps (libswiftCore, Foundation,
        // libcrypto...) in full; PSS divides them among the processes sharing them, and
        // private memory is what each agent alone costs.
        let pss = agentPIDs.map { ProcessProbe.rollupKB($0, "Pss:") }
        let privateDirty = agentPIDs.map { ProcessProbe.rollupKB($0, "Private_Dirty:") }
        let pssAvg = pss.isEmpty ? 0 : pss.reduce(0, +) / pss.count
        let privateAvg = privateDirty.isEmpty ? 0 : privateDirty.reduce(0, +) / privateDirty.count
        report(String(format: "workloads concurrent=%d deploy_all_s=%.1f node_rss_mb=%.1f agents=%d agent_rss_avg_mb=%.1f agent_rss_max_mb=%.1f agent_pss_avg_mb=%.1f agent_private_avg_mb=%.1f",
                     running.count, Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18,
                     Double(nodeRSS) / 1024, agents.count, Double(agentAvg) / 1024, Double(agentMax) / 1024,
                     Double(pssAvg) / 1024, Double(privateAvg) / 1024))
        for (id, name) in running { try await stop(id, name) }
        if skipLogs {
            await client.close()
            return
        }

        // 3. Log throughput.
        let chatty = try artifact("chatty", "#!/bin/sh\nsleep 0.5\nexec seq 1 \(lines)\n")
        let logs = try await client.subscribe(to: NexSubject.logs(namespace: "bench", node: node, workloadName: "chatty",
                                                                  workloadID: "*"))
        try await client.flush()
        let run = try await deploy("chatty", chatty)
        // Counts lines until all arrived, or none came for 5 s (lines lost) or 60 s passed.
        let progress = Progress()
        let counter = Task { () -> (Int, ContinuousClock.Instant?, ContinuousClock.Instant) in
            var count = 0
            var first: ContinuousClock.Instant?
            var last = ContinuousClock.now
            for await _ in logs {
                if first == nil { first = .now }
                count += 1
                last = .now
                progress.count.store(count, ordering: .relaxed)
                if count == lines { break }
            }
            return (count, first, last)
        }
        let watchdog = Task {
            let deadline = ContinuousClock.now + .seconds(60)
            var seen = -1
            while ContinuousClock.now < deadline {
                try await Task.sleep(for: .seconds(5))
                let now = progress.count.load(ordering: .relaxed)
                if now == seen { break }
                seen = now
            }
            try await logs.unsubscribe()
        }
        let (count, first, last) = await counter.value
        watchdog.cancel()
        let span = first.map { $0.duration(to: last) } ?? .zero
        let seconds = Double(span.components.seconds) + Double(span.components.attoseconds) / 1e18
        report(String(format: "workloads log_lines=%d log_lines_per_s=%.0f (one workload, one subscriber)",
                     count, seconds > 0 ? Double(count) / seconds : 0))
        _ = try? await stop(run.id, "chatty")
        await client.close()
    }

    /// `sandboxed` or `unsandboxed`: which node the figures are of.
    nonisolated(unsafe) static var label = "sandboxed"

    /// One result line on stdout (`workloads[<label>] ...`), written at once (stdout may be a pipe).
    static func report(_ line: String) {
        let labelled = line.hasPrefix("workloads ") ? "workloads[\(label)] " + line.dropFirst("workloads ".count) : line[...]
        FileHandle.standardOutput.write(Data((labelled + "\n").utf8))
    }

    static func next(_ subscription: NATSSubscription) async -> String? {
        for await message in subscription { return message.string }
        return nil
    }
}
