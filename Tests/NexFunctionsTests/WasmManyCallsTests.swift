import Foundation
import NATSTestSupport
import NexFunctions
import NexAgentKit
import Testing

/// Many calls on one wasm function, in a row and from concurrent callers, each answered with
/// its own payload. (Latency and throughput are figures, not checks:
/// Benchmarks/function-runtime-bench prints them.)
@Suite(.enabled(if: WasmTestKit.available, WasmTestKit.skipReason), .timeLimit(.minutes(2)))
struct WasmManyCallsTests {
    typealias Kit = WasmTestKit

    @Test func thousandsOfCallsInARowAndConcurrentlyAreEachAnsweredRight() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-many-")
        let echo = try await Kit.load(try Kit.echoPath(in: directory))
        let payload = Array("a small payload of sixty-four bytes, give or take a few bytes...".utf8)

        for call in 0..<2000 {
            let reply = try await echo.invoke(subject: "echo", payload: payload)
            guard reply == payload else {
                Issue.record("call \(call) answered \(reply.count) bytes instead of its payload")
                return
            }
        }
        let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var wrong = 0
                    let own = Array("caller \(worker): ".utf8) + payload
                    for _ in 0..<1000 where try await echo.invoke(subject: "echo.\(worker)", payload: own) != own {
                        wrong += 1
                    }
                    return wrong
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(wrong == 0, "\(wrong) of 8000 concurrent calls came back with another payload")
    }
}
