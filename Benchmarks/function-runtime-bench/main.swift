// The function runtimes in process, without node, agent or NATS: echo latency (p50, p99) and
// throughput (sequential and 8 concurrent callers) for JavaScript (JavaScriptCore) and wasm
// (WasmKit), and what a fresh JavaScript context per call would cost (Nex 0.2's way, and the
// reason one context is kept per function). Figures, not pass/fail; the unit suite
// (Tests/NexFunctionsTests) checks that these calls succeed.
//
// Usage: function-runtime-bench ECHO_JS ECHO_WASM   (Benchmarks/function-bench.sh runs it)
import Foundation
import NexAgentBus
import NexAgentKit
import NexControl
import NexFunctions

@main
struct FunctionRuntimeBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 3 else {
            FileHandle.standardError.write(Data("usage: function-runtime-bench ECHO_JS ECHO_WASM\n".utf8))
            exit(2)
        }
        let calls = Int(ProcessInfo.processInfo.environment["BENCH_CALLS"] ?? "") ?? 5000

        let javascript = try await load(.javascript, arguments[1])
        try await measureEcho("javascript", javascript, payload: Array("hello, function".utf8), calls: calls)
        try await measureFreshContexts(arguments[1], count: 100)

        let wasm = try await load(.wasm, arguments[2])
        let payload = Array("a small payload of sixty-four bytes, give or take a few bytes...".utf8)
        try await measureEcho("wasm", wasm, payload: payload, calls: calls)
    }

    /// Loads the function at `path` as workload "echo".
    static func load(_ type: WorkloadType, _ path: String) async throws -> any FunctionRunner {
        let definition = FunctionDefinition(
            type: type, workloadName: "echo", namespace: "default", artifactPath: path, environment: [:])
        return try await NexFunctionRuntime().load(definition, hostServices: NoHostServices())
    }

    /// Warm-up, then `calls` sequential invocations (latency percentiles, calls/s), then 8
    /// concurrent callers sharing `calls` invocations (calls/s).
    static func measureEcho(_ name: String, _ function: any FunctionRunner, payload: [UInt8], calls: Int) async throws {
        for _ in 0..<200 { _ = try await function.invoke(subject: "bench.echo", payload: payload) }
        let clock = ContinuousClock()
        var samples: [Duration] = []
        samples.reserveCapacity(calls)
        for _ in 0..<calls {
            let started = clock.now
            _ = try await function.invoke(subject: "bench.echo", payload: payload)
            samples.append(clock.now - started)
        }
        samples.sort()
        let total = samples.reduce(Duration.zero, +)
        print("\(name) echo (\(payload.count) B), sequential: p50 \(micros(samples[samples.count / 2])) µs, "
              + "p99 \(micros(samples[samples.count * 99 / 100])) µs, \(Int(Double(calls) / seconds(total))) calls/s")

        let callers = 8
        let started = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    for _ in 0..<(calls / callers) {
                        _ = try await function.invoke(subject: "bench.echo.\(caller)", payload: payload)
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - started
        print("\(name) echo, \(callers) concurrent callers: \(Int(Double(calls / callers * callers) / seconds(elapsed))) calls/s")
    }

    /// Load (context, prelude, script) + one call + release, `count` times.
    static func measureFreshContexts(_ path: String, count: Int) async throws {
        for _ in 0..<5 { _ = try await load(.javascript, path).invoke(subject: "warm", payload: []) }
        let clock = ContinuousClock()
        var samples: [Duration] = []
        for _ in 0..<count {
            let started = clock.now
            _ = try await load(.javascript, path).invoke(subject: "bench.fresh", payload: [1, 2, 3])
            samples.append(clock.now - started)
        }
        samples.sort()
        print("javascript fresh context per call (load + call): p50 \(micros(samples[samples.count / 2])) µs, "
              + "p90 \(micros(samples[samples.count * 9 / 10])) µs")
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func micros(_ duration: Duration) -> Int { Int(seconds(duration) * 1_000_000) }
}

/// The echo functions make no host-service calls.
struct NoHostServices: HostServiceCaller {
    func call(service: String, method: String, headers: [String: String], body: [UInt8]) async throws -> HostServiceReply {
        HostServiceReply(code: 404, message: "no host services in this benchmark")
    }
}
