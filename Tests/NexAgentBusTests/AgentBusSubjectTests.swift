import NIOCore
import Testing
@testable import NexAgentBus

@Suite struct AgentBusSubjectTests {
    @Test func agentSubjectsAreScopedToTheAgentID() {
        #expect(AgentBusSubject.toAgent("a1", "deploy") == "agentint.a1.deploy")
        #expect(AgentBusSubject.toHost("a1", "logs") == "hostint.a1.logs")
        #expect(AgentBusSubject.agentSubscription("a1") == "agentint.a1.>")
        #expect(AgentBusSubject.agentPublishSpace("a1") == "hostint.a1.>")
    }
}

/// Splitting a batch of log lines: every shape an agent (or a hostile one) can send.
@Suite struct AgentLogBatchTests {
    static func split(_ text: String) -> ([String], Int) {
        let (lines, leftOut) = AgentLogBatch.lines(of: ByteBuffer(string: text))
        return (lines.map { String(buffer: $0) }, leftOut)
    }

    @Test func linesAreSplitOnNewlinesKeepingEmptyOnes() {
        #expect(Self.split("one").0 == ["one"])
        #expect(Self.split("").0 == [""])
        #expect(Self.split("a\nb\nc").0 == ["a", "b", "c"])
        #expect(Self.split("a\n\nb").0 == ["a", "", "b"])
        #expect(Self.split("a\n").0 == ["a", ""])
        #expect(Self.split("\n").0 == ["", ""])
        #expect(Self.split("tab\tcr\r\u{0}nul").0 == ["tab\tcr\r\u{0}nul"])
    }

    /// A message of nothing but newlines (1 MiB of them) is cut at the protocol's line limit:
    /// the node forwards that many lines, says how many it left out, and holds no more.
    @Test func aFloodOfEmptyLinesIsCutAtTheLimit() {
        let text = String(repeating: "\n", count: 1024 * 1024)
        let (lines, leftOut) = AgentLogBatch.lines(of: ByteBuffer(string: text))
        #expect(lines.count == AgentLogBatch.maximumLines)
        #expect(lines.count + leftOut == 1024 * 1024 + 1)
        #expect(lines.allSatisfy { $0.readableBytes == 0 })
    }
}
