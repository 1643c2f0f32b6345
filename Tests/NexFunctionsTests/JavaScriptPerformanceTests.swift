import NexFunctions
import NexAgentKit
import Testing

/// Echo latency and throughput, printed rather than asserted (the machine is shared).
/// Also what a fresh context per call would cost, the reason one context is kept per function.
@Suite(.serialized) struct JavaScriptPerformanceTests {
    static let echo = """
        (subject, payload) => ({ triggered_on: subject, payload: new TextDecoder().decode(payload) })
        """

    @Test func echoLatencyAndThroughput() async throws {
        let function = try await JS.load(Self.echo)
        let payload = Array("hello, function".utf8)
        try await JS.within(.seconds(120), "the echo measurement") {
            for _ in 0..<200 { _ = try await function.invoke(subject: "bench.echo", payload: payload) }

            var samples: [Duration] = []
            samples.reserveCapacity(5000)
            let clock = ContinuousClock()
            for _ in 0..<5000 {
                let started = clock.now
                _ = try await function.invoke(subject: "bench.echo", payload: payload)
                samples.append(clock.now - started)
            }
            samples.sort()
            let sequentialTotal = samples.reduce(Duration.zero, +)
            print("""
                javascript echo, sequential: p50 \(Self.micros(samples[samples.count / 2])) µs, \
                p99 \(Self.micros(samples[samples.count * 99 / 100])) µs, \
                \(Int(Double(samples.count) / sequentialTotal.seconds)) calls/s
                """)

            let callers = 8
            let perCaller = 2000
            let started = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<callers {
                    group.addTask {
                        for _ in 0..<perCaller { _ = try await function.invoke(subject: "bench.echo", payload: payload) }
                    }
                }
                try await group.waitForAll()
            }
            let elapsed = clock.now - started
            print("javascript echo, \(callers) concurrent callers: \(Int(Double(callers * perCaller) / elapsed.seconds)) calls/s")
        }
        let reply = try await JS.text(function, "bench.echo", payload)
        #expect(reply == #"{"triggered_on":"bench.echo","payload":"hello, function"}"#)
    }

    @Test func freshContextCost() async throws {
        // What Nex 0.2's "new context per call" would cost here: load (context, prelude,
        // script) + one call + release, per call.
        let clock = ContinuousClock()
        var samples: [Duration] = []
        try await JS.within(.seconds(120), "the fresh-context measurement") {
            for _ in 0..<5 { _ = try await JS.call(try await JS.load(Self.echo), "warm") }
        }
        for _ in 0..<100 {
            let started = clock.now
            let function = try await JS.load(Self.echo)
            _ = try await JS.call(function, "bench.fresh", [1, 2, 3])
            samples.append(clock.now - started)
        }
        samples.sort()
        print("javascript fresh context per call (load + call): p50 \(Self.micros(samples[samples.count / 2])) µs, "
              + "p90 \(Self.micros(samples[samples.count * 9 / 10])) µs")
    }

    static func micros(_ duration: Duration) -> Int { Int(duration.seconds * 1_000_000) }
}

extension Duration {
    fileprivate var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
