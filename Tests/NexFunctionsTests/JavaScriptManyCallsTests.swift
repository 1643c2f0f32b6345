import NexFunctions
import NexAgentKit
import Testing

/// Many calls on one JavaScript function, in a row and from concurrent callers, each answered
/// right; and many fresh loads of one script, each on its own context. (Latency and throughput
/// are figures, not checks: Benchmarks/function-runtime-bench prints them.)
@Suite(.serialized) struct JavaScriptManyCallsTests {
    static let echo = """
        (subject, payload) => ({ triggered_on: subject, payload: new TextDecoder().decode(payload) })
        """

    static func expected(_ subject: String) -> String {
        #"{"triggered_on":"\#(subject)","payload":"hello, function"}"#
    }

    @Test func thousandsOfCallsInARowAndConcurrentlyAreEachAnsweredRight() async throws {
        let function = try await JS.load(Self.echo)
        let payload = Array("hello, function".utf8)
        try await JS.within(.seconds(120), "the calls") {
            for call in 0..<2000 {
                let subject = "many.echo.\(call % 7)"
                let reply = String(decoding: try await function.invoke(subject: subject, payload: payload), as: UTF8.self)
                guard reply == Self.expected(subject) else {
                    Issue.record("call \(call) answered \(reply)")
                    return
                }
            }
            let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
                for caller in 0..<8 {
                    group.addTask {
                        var wrong = 0
                        for _ in 0..<250 {
                            let subject = "many.caller.\(caller)"
                            let reply = try await function.invoke(subject: subject, payload: payload)
                            if String(decoding: reply, as: UTF8.self) != Self.expected(subject) { wrong += 1 }
                        }
                        return wrong
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(wrong == 0, "\(wrong) of 2000 concurrent calls answered with another caller's subject or payload")
        }
    }

    @Test func aScriptLoadedAgainAndAgainAnswersEveryTime() async throws {
        // Each load makes its own context; none keeps state of an earlier one.
        let counter = "globalThis.calls = 0; () => ++globalThis.calls"
        for load in 0..<30 {
            let function = try await JS.load(counter)
            #expect(try await JS.text(function, "fresh.\(load)") == "1", "load \(load) saw an earlier context's calls")
            #expect(try await JS.text(function, "fresh.\(load)") == "2")
        }
    }
}
