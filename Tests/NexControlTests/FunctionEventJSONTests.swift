import Foundation
import Testing
@testable import NexControl

/// The hand-written per-invocation events decode as the Codable events they stand for, whatever
/// a workload name or a trigger subject holds.
@Suite struct FunctionEventJSONTests {
    static let hostile = [
        "plain", #"quo"te"#, #"back\slash"#, "new\nline\ttab\r", "nul\u{0}bell\u{7}esc\u{1B}del\u{7F}",
        "ünïcødé ✓ 🚀", #"\u0022 not an escape"#, "}],\"namespace\":\"other\"",
    ]

    @Test(arguments: hostile)
    func succeededDecodesFieldForField(text: String) throws {
        let time = Date(timeIntervalSince1970: 1_796_567_400.123)
        let data = FunctionExecSucceededEvent(workloadName: "w-\(text)", triggerSubject: "s.\(text)", elapsedNanos: 987_654_321,
                                              namespace: "ns-\(text)")
        let bytes = FunctionEventJSON.succeeded(source: "NNODE-\(text)", data, time: time)
        let event = try JSONDecoder().decode(NexEvent<FunctionExecSucceededEvent>.self, from: Data(bytes))
        #expect(event.data == data)
        #expect(event.source == "NNODE-\(text)")
        #expect(event.type == .functionExecSucceeded)
        #expect(event.namespace == "ns-\(text)")
        #expect(event.specVersion == "1.0")
        #expect(event.dataContentType == "application/json")
        #expect(event.time == "2026-12-06T14:30:00.123Z")
        #expect(UUID(uuidString: event.id) != nil && event.id == event.id.lowercased())
        // Exactly the keys JSONEncoder writes for the same event.
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        let reference = try #require(try JSONSerialization.jsonObject(
            with: JSONEncoder().encode(NexEvent(source: "x", type: .functionExecSucceeded, data: data, namespace: "n")))
            as? [String: Any])
        #expect(Set(object.keys) == Set(reference.keys))
        #expect(Set((object["data"] as? [String: Any] ?? [:]).keys) == Set((reference["data"] as? [String: Any] ?? [:]).keys))
    }

    /// Ids are version 4 UUIDs, lowercase, never repeated within a process.
    @Test func idsAreFreshVersion4UUIDs() throws {
        var seen = Set<String>()
        for _ in 0..<2000 {
            let data = FunctionExecSucceededEvent(workloadName: "w", triggerSubject: "s", elapsedNanos: 1, namespace: "n")
            let event = try JSONDecoder().decode(NexEvent<FunctionExecSucceededEvent>.self,
                                                 from: Data(FunctionEventJSON.succeeded(source: "x", data)))
            let id = Array(event.id)
            #expect(UUID(uuidString: event.id) != nil && event.id == event.id.lowercased())
            #expect(id[14] == "4" && "89ab".contains(id[19]), "\(event.id)")
            seen.insert(event.id)
        }
        #expect(seen.count == 2000)
    }

    @Test(arguments: hostile)
    func logRecordsDecodeFieldForField(text: String) throws {
        let record = LogRecord(text: text, level: 2, id: "id-\(text)")
        #expect(try JSONDecoder().decode(LogRecord.self, from: Data(record.json)) == record)
    }

    @Test(arguments: hostile)
    func failedDecodesFieldForField(text: String) throws {
        let data = FunctionExecFailedEvent(workloadName: text, triggerSubject: text, namespace: text, error: "failed: \(text)")
        let bytes = FunctionEventJSON.failed(source: text, data)
        let event = try JSONDecoder().decode(NexEvent<FunctionExecFailedEvent>.self, from: Data(bytes))
        #expect(event.data == data)
        #expect(event.type == .functionExecFailed)
        #expect(event.namespace == text)
    }

    /// The hand-written time stamp reads back (with the ISO 8601 format style) as the instant it
    /// stamps, to the millisecond, in the style's shape. (The style truncates 0.123 — stored as
    /// 0.12299… — to .122; ours prints .123.)
    @Test(arguments: [0.0, 1_796_567_400.0, 1_796_567_400.123, 1_796_567_400.123456, 1_796_567_400.9999, 951_825_599.5,
                      4_102_444_799.001])
    func timeReadsBackAsTheInstant(seconds: Double) throws {
        let date = Date(timeIntervalSince1970: seconds)
        let style = Date.ISO8601FormatStyle().year().month().day().dateSeparator(.dash)
            .time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted)
        let text = NexEventTime.format(date)
        #expect(text.count == date.formatted(style).count)
        #expect(text.prefix(20) == date.formatted(style).prefix(20))  // down to the seconds
        let parsed = try style.parse(text)
        #expect(abs(parsed.timeIntervalSince(date)) < 0.001)
    }
}
