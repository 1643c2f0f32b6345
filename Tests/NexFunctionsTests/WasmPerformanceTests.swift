import Foundation
import NATSTestSupport
import NexFunctions
import NexAgentKit
import Testing

/// Prints echo latency and throughput (measured, not asserted: CI machines vary).
@Suite(.enabled(if: WasmTestKit.available, WasmTestKit.skipReason), .timeLimit(.minutes(2)))
struct WasmPerformanceTests {
    typealias Kit = WasmTestKit

    @Test func echoLatencyAndThroughput() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-perf-")
        let echo = try await Kit.load(try Kit.echoPath(in: directory))
        let payload = Array("a small payload of sixty-four bytes, give or take a few bytes...".utf8)
        let clock = ContinuousClock()

        // Warm up (threads, lazy compilation, allocator).
        for _ in 0..<200 { _ = try await echo.invoke(subject: "echo", payload: payload) }

        var samples: [Duration] = []
        samples.reserveCapacity(2000)
        for _ in 0..<2000 {
            let started = clock.now
            let reply = try await echo.invoke(subject: "echo", payload: payload)
            samples.append(clock.now - started)
            #expect(reply.count == payload.count)
        }
        samples.sort()
        func micros(_ duration: Duration) -> Int {
            Int(duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000)
        }
        let p50 = micros(samples[samples.count / 2])
        let p99 = micros(samples[samples.count * 99 / 100])

        let concurrency = 8
        let total = 8000
        let started = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    for _ in 0..<(total / concurrency) {
                        _ = try await echo.invoke(subject: "echo.\(worker)", payload: payload)
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = Int(Double(total) / seconds)
        print("wasm echo (\(payload.count) B): sequential p50 \(p50) µs, p99 \(p99) µs; \(concurrency) concurrent callers: \(rate) calls/s")
    }
}
