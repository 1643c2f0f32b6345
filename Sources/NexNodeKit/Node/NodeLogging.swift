import FoundationEssentials
import Logging
import NATSWire
import NexControl
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How the node writes its own log lines to standard error (`--log-format`).
public enum NodeLogFormat: String, Sendable, CaseIterable {
    /// `2026-12-06T21:00:00Z info nex-node: message key=value`.
    case text
    /// One JSON object per line: `time`, `level`, `label`, `message`, then the metadata keys.
    case json
}

/// The node's log handler: every line to standard error in the chosen format, and with
/// `--logger nats` also to a ``NodeLogPublisher`` (Nex 0.2's `$NEX.logs.system.<node>`).
public struct NodeLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: NodeLogFormat
    private let publisher: NodeLogPublisher?

    public init(label: String, format: NodeLogFormat, level: Logger.Level, publisher: NodeLogPublisher? = nil) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.publisher = publisher
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let line = Self.render(format: format, time: Date(), level: event.level, label: label,
                               message: "\(event.message)", metadata: all)
        var output = line + "\n"
        output.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
        publisher?.enqueue(Self.render(format: .text, time: nil, level: event.level, label: label,
                                       message: "\(event.message)", metadata: all),
                           level: Self.nexLevel(event.level))
    }

    /// One line, without its newline. `time` nil leaves the time out (the NATS record has none).
    static func render(format: NodeLogFormat, time: Date?, level: Logger.Level, label: String, message: String,
                       metadata: Logger.Metadata) -> String {
        switch format {
        case .text:
            var parts: [String] = []
            if let time { parts.append(time.formatted(.iso8601)) }
            parts.append("\(level) \(label): \(message)")
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { parts.append("\(key)=\(value)") }
            return parts.joined(separator: " ")
        case .json:
            var object: [String: JSONValue] = [
                "level": .string(level.rawValue), "label": .string(label), "message": .string(message),
            ]
            if let time { object["time"] = .string(time.formatted(.iso8601)) }
            for (key, value) in metadata where object[key] == nil { object[key] = .string("\(value)") }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(object)).map { String(decoding: $0, as: UTF8.self) } ?? message
        }
    }

    /// Nex's 0...6 scale (0 panic ... 6 trace).
    static func nexLevel(_ level: Logger.Level) -> Int {
        switch level {
        case .trace: 6
        case .debug: 5
        case .info, .notice: 4
        case .warning: 3
        case .error: 2
        case .critical: 1
        }
    }
}

/// Publishes the node's own log lines on `$NEX.logs.system.<node>` (Nex 0.2's `--logger nats`),
/// as ``LogRecord``s whose `id` is the node id.
///
/// Lines logged before the node is connected are kept (up to ``capacity``) and sent once it
/// is; past that, and while the connection cannot keep up, lines are dropped and counted
/// (``dropped``), never waited for: logging never blocks the node.
public final class NodeLogPublisher: Sendable {
    /// Lines kept while no connection is attached or the sender is behind.
    public let capacity: Int
    private struct State {
        var lines: [(text: String, level: Int)] = []
        var dropped = 0
        var waiter: CheckedContinuation<Void, Never>?
        var closed = false
    }
    private let state = Mutex(State())

    public init(capacity: Int = 1000) {
        self.capacity = capacity
    }

    /// Lines dropped so far (buffer full).
    public var dropped: Int { state.withLock { $0.dropped } }

    func enqueue(_ text: String, level: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.closed else { return nil }
            guard state.lines.count < capacity else {
                state.dropped += 1
                return nil
            }
            state.lines.append((text, level))
            return state.waiter.take()
        }
        waiter?.resume()
    }

    /// Sends queued and new lines on `client` as node `nodeID` until cancelled or ``close()``;
    /// then sends what is left and returns.
    public func run(client: NATSClient, nodeID: String) async {
        let subject = NexSubject.systemLogs(node: nodeID)
        let encoder = JSONEncoder()
        while true {
            let (batch, closed) = await next()
            for line in batch {
                guard let data = try? encoder.encode(LogRecord(text: line.text, level: line.level, id: nodeID)) else { continue }
                try? await client.publish(Array(data), to: subject)
            }
            if closed || (Task.isCancelled && batch.isEmpty) { return }
        }
    }

    /// Stops taking lines; ``run(client:nodeID:)`` sends what is queued and returns.
    public func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.closed = true
            return state.waiter.take()
        }
        waiter?.resume()
    }

    private func next() async -> (lines: [(text: String, level: Int)], closed: Bool) {
        while true {
            let taken = state.withLock { state -> (lines: [(text: String, level: Int)], closed: Bool)? in
                if !state.lines.isEmpty || state.closed || Task.isCancelled {
                    defer { state.lines.removeAll(keepingCapacity: true) }
                    return (state.lines, state.closed)
                }
                return nil
            }
            if let taken { return taken }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let ready = state.withLock { state -> Bool in
                        if !state.lines.isEmpty || state.closed || Task.isCancelled { return true }
                        state.waiter = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
            } onCancel: {
                state.withLock { $0.waiter.take() }?.resume()
            }
        }
    }
}
