import FoundationEssentials

/// A workload log record with where it came from (read off its subject,
/// `$NEX.logs.<ns>.<node>.<workload_name>.<workload_id>`) and when it arrived.
///
/// ```swift
/// for await (subject, record) in try await nex.logs(node: nodeID) {
///     print(WorkloadLogLine(subject: subject, record: record, received: Date()).formatted)
/// }
/// ```
public struct WorkloadLogLine: Sendable, Equatable, Codable {
    /// `namespace`: the workload's namespace, from the subject (empty when the subject has another shape).
    public var namespace: String
    /// `node_id`: the node the workload runs on, from the subject.
    public var nodeID: String
    /// `workload_name`: the workload's name, from the subject.
    public var workloadName: String
    /// `workload_id`: the workload's id, from the subject, else from the record.
    public var workloadID: String
    /// The client's clock when the record arrived (records carry no time of their own).
    public var timestamp: Date
    /// `text`: the output line.
    public var text: String
    /// `level`: Nex's 0...6 scale (0 panic … 6 trace).
    public var level: Int

    enum CodingKeys: String, CodingKey {
        case namespace, nodeID = "node_id", workloadName = "workload_name", workloadID = "workload_id"
        case timestamp, text, level
    }

    /// Reads the subject's tokens; a subject of another shape leaves them empty, and the
    /// workload id then comes from the record.
    public init(subject: String, record: LogRecord, received: Date) {
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let fromSubject = tokens.count == 6 && tokens[0] == NexSubject.prefix && tokens[1] == "logs"
        namespace = fromSubject ? tokens[2] : ""
        nodeID = fromSubject ? tokens[3] : ""
        workloadName = fromSubject ? tokens[4] : ""
        workloadID = fromSubject ? tokens[5] : record.id
        if workloadID.isEmpty { workloadID = record.id }
        timestamp = received
        text = record.text
        level = record.level
    }

    /// `2024-07-02T10:11:12.345Z NODE WORKLOAD: text`, the text's trailing newlines removed.
    public var formatted: String {
        var text = Substring(self.text)
        while text.last == "\n" || text.last == "\r" { text = text.dropLast() }
        let stamp = timestamp.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        let workload = workloadName.isEmpty ? workloadID : workloadName
        return "\(stamp) \(nodeID.isEmpty ? "-" : nodeID) \(workload): \(text)"
    }

    /// The line as one line of JSON (sorted keys, RFC 3339 timestamp).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
