import Foundation
import Logging
@testable import NexNodeKit
import Testing

@Suite struct NodeLoggingTests {
    static let time = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func textLinesCarryTimeLevelLabelMessageAndSortedMetadata() {
        let line = NodeLogHandler.render(format: .text, time: Self.time, level: .warning, label: "nex-node",
                                         message: "agent gone", metadata: ["b": "2", "a": "1"])
        #expect(line == "2027-01-15T08:00:00Z warning nex-node: agent gone a=1 b=2")
    }

    @Test func jsonLinesAreOneObjectAndMetadataCannotOverwriteTheFields() throws {
        let line = NodeLogHandler.render(format: .json, time: Self.time, level: .info, label: "nex-node",
                                         message: "line \"quoted\"\nnext", metadata: ["node_id": "N1", "message": "forged"])
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object == ["time": "2027-01-15T08:00:00Z", "level": "info", "label": "nex-node",
                           "message": "line \"quoted\"\nnext", "node_id": "N1"])
    }

    @Test func nexLevelsFollowNex02sScale() {
        #expect([Logger.Level.critical, .error, .warning, .notice, .info, .debug, .trace].map(NodeLogHandler.nexLevel)
            == [1, 2, 3, 4, 4, 5, 6])
    }

    @Test func aFullPublisherDropsAndCountsInsteadOfWaiting() {
        let publisher = NodeLogPublisher(capacity: 3)
        for index in 0..<10 { publisher.enqueue("line \(index)", level: 4) }
        #expect(publisher.dropped == 7)
        publisher.close()
        publisher.enqueue("after close", level: 4)
        #expect(publisher.dropped == 7, "a closed publisher ignores lines")
    }
}
