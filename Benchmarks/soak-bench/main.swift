// A soak of one nex-node (started by Benchmarks/soak-bench.sh): many deploy/stop cycles of a
// native service, then many invocations of a wasm function, with the node's resident memory,
// open descriptors, threads and processes read before and after each phase.
//
// Targets: flat within 10% (memory; threads too, or within one per core, the swing of Swift
// concurrency's own pool), zero leaked processes and descriptors. "Before"
// is taken after a warm-up, so lazily made things (the artifact cache, the first connection
// of a kind) do not count as leaks.
//
// The function's agent is sampled too: with `direct_triggers` it holds the trigger connection.
//
// Usage: soak-bench NATS_URL NODE_ID NODE_PID ARTIFACT_DIR ECHO_WASM
//        soak-bench --operator-setup DIR (see BenchSupport's OperatorSetup)
// Environment: SOAK_CYCLES (1000), SOAK_CALLS (1000000), SOAK_CONCURRENCY (32), BENCH_CREDS (a
// .creds file to connect with), BENCH_MODE (a label for the lines printed).
import BenchSupport
import Foundation
import NATSWire
import NexControl
import NIOCore
import Synchronization

@main
struct SoakBench {
    struct Sample: CustomStringConvertible {
        var rssKB: Int
        var descriptors: Int
        var threads: Int
        var processes: Int

        init(_ pid: Int32) {
            rssKB = ProcessProbe.rssKB(pid)
            descriptors = ProcessProbe.openDescriptors(pid)
            threads = ProcessProbe.threads(pid)
            processes = ProcessProbe.descendants(of: pid).count
        }

        var description: String {
            String(format: "rss_mb=%.1f fds=%d threads=%d processes=%d", Double(rssKB) / 1024, descriptors, threads, processes)
        }
    }

    static func main() async throws {
        let arguments = CommandLine.arguments
        if arguments.count == 3, arguments[1] == "--operator-setup" {
            return try OperatorSetup.write(to: arguments[2])
        }
        guard arguments.count == 6, let nodePID = Int32(arguments[3]) else {
            FileHandle.standardError.write(Data("usage: soak-bench NATS_URL NODE_ID NODE_PID ARTIFACT_DIR ECHO_WASM\n".utf8))
            exit(2)
        }
        let url = arguments[1], node = arguments[2], artifacts = arguments[4], wasm = arguments[5]
        let environment = ProcessInfo.processInfo.environment
        let cycles = Int(environment["SOAK_CYCLES"] ?? "") ?? 1000
        let calls = Int(environment["SOAK_CALLS"] ?? "") ?? 1_000_000
        let concurrency = Int(environment["SOAK_CONCURRENCY"] ?? "") ?? 32

        let client = try NATSClient(options: OperatorSetup.clientOptions(url, name: "soak-bench"))
        try await client.connect()
        let nex = NexClient(connection: client, timeout: .seconds(30))
        let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()
        var verdicts: [Bool] = []

        // 1. Deploy/stop cycles of a native service.
        let path = "\(artifacts)/sleeper.sh"
        try "#!/bin/sh\nexec sleep 3600\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        let service = try WorkloadSubmission(name: "soak", location: .file(path: path),
                                             artifactHash: try ArtifactDigest.sha256Hex(ofFile: path))
        func cycle() async throws {
            let run = try await nex.deploy(service, namespace: "soak", node: node, issuer: issuer, sender: sender)
            _ = try await nex.stopWorkload(namespace: "soak", node: node, id: run.id, name: "soak", issuer: issuer)
        }
        for _ in 0..<20 { try await cycle() }
        try await settle()
        let beforeCycles = Sample(nodePID)
        let cyclesStarted = ContinuousClock.now
        for _ in 0..<cycles { try await cycle() }
        let cyclesTook = cyclesStarted.duration(to: .now)
        try await settle()
        let afterCycles = Sample(nodePID)
        verdicts.append(report("deploy_stop", count: cycles, took: cyclesTook, afterCycles, beforeCycles))

        // 2. Function invocations.
        let function = try WorkloadSubmission(
            name: "soak-echo", type: "wasm", location: .file(path: wasm),
            artifactHash: try ArtifactDigest.sha256Hex(ofFile: wasm), triggerSubjects: ["soak.echo"])
        let run = try await nex.deploy(function, namespace: "soak", node: node, issuer: issuer, sender: sender)
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64)
        func invoke(_ count: Int) async throws {
            let issued = Issued()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        while issued.count.add(1, ordering: .relaxed).newValue <= count {
                            let reply = try await client.request(payload, to: "soak.echo", timeout: .seconds(10))
                            if let failure = reply.headers?[FunctionHeader.error] { throw SoakError(failure) }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await invoke(10_000)
        try await settle()
        // The function's agent: the node's child that has worked the most.
        let agentPID = ProcessProbe.descendants(of: nodePID).max { ProcessProbe.cpuMicroseconds($0) < ProcessProbe.cpuMicroseconds($1) }
        let beforeCalls = Sample(nodePID), beforeAgent = agentPID.map(Sample.init)
        let callsStarted = ContinuousClock.now
        try await invoke(calls)
        let callsTook = callsStarted.duration(to: .now)
        try await settle()
        let afterCalls = Sample(nodePID), afterAgent = agentPID.map(Sample.init)
        verdicts.append(report("invocations", count: calls, took: callsTook, afterCalls, beforeCalls))
        if let beforeAgent, let afterAgent {
            verdicts.append(report("invocations_agent", count: calls, took: callsTook, afterAgent, beforeAgent))
        }
        _ = try? await nex.stopWorkload(namespace: "soak", node: node, id: run.id, name: "soak-echo", issuer: issuer)
        await client.close()
        print("soak \(verdicts.allSatisfy { $0 } ? "flat" : "NOT FLAT")")
    }

    /// Lets the warm pool refill and the node's deferred work finish before a sample.
    static func settle() async throws {
        try await Task.sleep(for: .seconds(3))
    }

    /// One line per phase: before, after, rate, and whether it stayed flat.
    static func report(_ phase: String, count: Int, took: Duration, _ after: Sample, _ before: Sample) -> Bool {
        let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
        let memoryFlat = Double(after.rssKB) <= Double(before.rssKB) * 1.10
        // Swift concurrency's global executor (Dispatch workers) grows and shrinks by itself, up
        // to about one thread per core: a node of 7 threads may have 8 at the next sample. A leak
        // (a thread per deploy or per call) is thousands.
        let threadSlack = max(Double(before.threads) * 0.10, Double(ProcessInfo.processInfo.activeProcessorCount))
        let threadsFlat = Double(after.threads) <= Double(before.threads) + threadSlack
        let flat = memoryFlat && threadsFlat && after.descriptors <= before.descriptors && after.processes <= before.processes
        let mode = ProcessInfo.processInfo.environment["BENCH_MODE"].map { " mode=\($0)" } ?? ""
        print(String(format: "soak %@ n=%d per_s=%.0f before: %@ after: %@ rss_growth=%.1f%% %@%@", phase, count,
                     Double(count) / max(seconds, 0.001), before.description, after.description,
                     (Double(after.rssKB) / Double(max(before.rssKB, 1)) - 1) * 100, flat ? "flat" : "GROWING", mode))
        return flat
    }
}

/// Calls handed out so far, across the concurrent callers.
final class Issued: Sendable {
    let count = Atomic<Int>(0)
}

struct SoakError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
