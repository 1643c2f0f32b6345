// Function invocation on a running nex-node (started by Benchmarks/function-bench.sh):
// a NATSWire request to the trigger subject, through node, agent and function, and back,
// for the echo function in wasm and in JavaScript, beside a plain NATSWire echo responder in
// the same run. Targets (2 cores): p50 < 250 µs wasm, < 400 µs JS; >= 5,000 calls/s;
// overhead <= 3x the plain responder. Also cold start: deploy sent -> first reply.
//
// Usage: function-bench NATS_URL NODE_ID ECHO_JS ECHO_WASM (BENCH_CREDS: a .creds file to
// connect with; BENCH_MODE: a label for the lines printed)
//        function-bench --operator-setup DIR: writes an operator-mode server's config
//        (server.conf), a user's creds (user.creds) and the account's signing key seed
//        (signing.nk), for the direct-trigger pass of function-bench.sh.
import Foundation
import NATSWire
import NexControl
import NIOCore
import Synchronization
import BenchSupport

@main
struct FunctionBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        if arguments.count == 3, arguments[1] == "--operator-setup" {
            return try OperatorSetup.write(to: arguments[2])
        }
        guard arguments.count == 5 else {
            FileHandle.standardError.write(Data("usage: function-bench NATS_URL NODE_ID ECHO_JS ECHO_WASM\n".utf8))
            exit(2)
        }
        let url = arguments[1], node = arguments[2]
        let mode = ProcessInfo.processInfo.environment["BENCH_MODE"].map { " mode=\($0)" } ?? ""
        let calls = Int(ProcessInfo.processInfo.environment["BENCH_CALLS"] ?? "") ?? 2000
        let client = try await connect(url, name: "function-bench")
        let nex = NexClient(connection: client, timeout: .seconds(30))
        let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()

        // The peer: a plain NATSWire responder on its own connection.
        let responder = try await connect(url, name: "plain-echo")
        let requests = try await responder.subscribe(to: "bench.plain")
        try await responder.flush()
        let echo = Task {
            for await message in requests {
                if let reply = message.replyTo { try? await responder.publish(message.payload, to: reply) }
            }
        }
        defer { echo.cancel() }

        var results: [(String, Stats)] = [("plain", try await measure(client, subject: "bench.plain", calls: calls))]
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }
        for (name, type, path) in [("wasm", "wasm", absolute(arguments[4])), ("javascript", "javascript", absolute(arguments[3]))] {
            let subject = "bench.fn.\(name)"
            let started = ContinuousClock.now
            let submission = try WorkloadSubmission(
                name: "bench-\(name)", type: type, location: .file(path: path),
                artifactHash: try ArtifactDigest.sha256Hex(ofFile: path), triggerSubjects: [subject])
            _ = try await nex.deploy(submission, namespace: "bench", node: node, issuer: issuer, sender: sender)
            while true {
                if let reply = try? await client.request("cold", to: subject, timeout: .seconds(2)),
                   reply.headers?[FunctionHeader.error] == nil { break }
            }
            let cold = started.duration(to: .now)
            report(String(format: "functions %@ cold_start_ms=%.1f (deploy sent -> first reply)%@", name, milliseconds(cold), mode))
            results.append((name, try await measure(client, subject: subject, calls: calls)))
        }
        let plain = results[0].1
        for (name, stats) in results {
            report(String(format: "functions %@ p50_us=%.0f p99_us=%.0f calls_per_s=%.0f (16 concurrent) overhead_p50=%.2fx%@",
                          name, stats.p50, stats.p99, stats.throughput, stats.p50 / plain.p50, mode))
        }
        for (name, stats) in results {
            report("functions \(name) cpu_us_per_call " + stats.cpu.map { String(format: "%@=%.1f", $0.0, $0.1) }
                .joined(separator: " ") + " (16 concurrent)" + mode)
        }
        await client.close()
        await responder.close()
    }

    struct Stats {
        var p50: Double
        var p99: Double
        var throughput: Double
        /// CPU microseconds per call in each process during the throughput window.
        var cpu: [(String, Double)]
    }

    /// The processes whose CPU time is shared out per call: this one, and the server, the node
    /// and the node's agents when the script names them (BENCH_SERVER_PID, BENCH_NODE_PID).
    static func cpuSnapshot() -> [(String, Int)] {
        let environment = ProcessInfo.processInfo.environment
        var snapshot = [("bench", ProcessProbe.cpuMicroseconds(getpid()))]
        if let server = environment["BENCH_SERVER_PID"].flatMap(Int32.init) {
            snapshot.append(("nats_server", ProcessProbe.cpuMicroseconds(server)))
        }
        if let node = environment["BENCH_NODE_PID"].flatMap(Int32.init) {
            snapshot.append(("node", ProcessProbe.cpuMicroseconds(node)))
            snapshot.append(("agents", ProcessProbe.descendants(of: node).reduce(0) { $0 + ProcessProbe.cpuMicroseconds($1) }))
        }
        return snapshot
    }

    /// Sequential round trips (latency), then 16 concurrent requesters for 3 s (throughput).
    static func measure(_ client: NATSClient, subject: String, calls: Int) async throws -> Stats {
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64)
        for _ in 0..<200 { _ = try await client.request(payload, to: subject, timeout: .seconds(5)) }
        var samples: [Double] = []
        samples.reserveCapacity(calls)
        for _ in 0..<calls {
            let started = ContinuousClock.now
            let reply = try await client.request(payload, to: subject, timeout: .seconds(5))
            samples.append(milliseconds(started.duration(to: .now)) * 1000)
            if let failure = reply.headers?[FunctionHeader.error] { throw BenchError(failure) }
        }
        samples.sort()
        let done = Counter()
        let window = Duration.seconds(3)
        let before = cpuSnapshot()
        let began = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    while began.duration(to: .now) < window {
                        _ = try await client.request(payload, to: subject, timeout: .seconds(5))
                        done.value.add(1, ordering: .relaxed)
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = began.duration(to: .now)
        let calls = Double(max(done.value.load(ordering: .relaxed), 1))
        let cpu = zip(before, cpuSnapshot()).map { ($0.0, Double($1.1 - $0.1) / calls) }
        return Stats(p50: samples[samples.count / 2], p99: samples[min(samples.count - 1, samples.count * 99 / 100)],
                     throughput: calls / (milliseconds(elapsed) / 1000), cpu: cpu)
    }

    static func connect(_ url: String, name: String) async throws -> NATSClient {
        let client = try NATSClient(options: OperatorSetup.clientOptions(url, name: name))
        try await client.connect()
        return client
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    static func report(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}

final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
