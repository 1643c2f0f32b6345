import NexWorkloads
import FoundationEssentials
import Logging
import NATSWire
import NexAgentBus
import NexControl
import NIOCore
import Synchronization

/// Where an agent's output lines go.
struct LogRoute: Sendable {
    let namespace: String
    let name: String
    let workloadID: String
}

/// agent id → route, read by the log forwarder on every line without an actor hop; and the
/// output lines each workload's agents dropped (their rate limit), by workload id.
final class LogRoutes: Sendable {
    private let routes = Mutex<[String: LogRoute]>([:])
    /// workload id → agent id → lines that agent dropped (a restarted workload has several agents).
    private let dropped = Mutex<[String: [String: Int]]>([:])

    func set(_ agentID: String, _ route: LogRoute) { routes.withLock { $0[agentID] = route } }
    func remove(_ agentID: String) { routes.withLock { $0[agentID] = nil } }
    func route(for agentID: String) -> LogRoute? { routes.withLock { $0[agentID] } }

    func recordDropped(_ total: Int, agentID: String, workloadID: String) {
        dropped.withLock { $0[workloadID, default: [:]][agentID] = total }
    }

    /// Lines dropped for the workload so far, nil when none.
    func droppedLines(of workloadID: String) -> Int? {
        dropped.withLock { $0[workloadID]?.values.reduce(0, +) }
    }

    /// Forgets a workload that is gone.
    func forget(workloadID: String) { dropped.withLock { $0[workloadID] = nil } }
}

/// Turns each line an agent publishes on `hostint.<id>.logs` (in batches, ``AgentLogBatch``)
/// into a ``LogRecord`` on `$NEX.logs.<ns>.<node>.<workload_name>.<workload_id>`.
struct LogForwarder: Sendable {
    let nodeID: String
    let routes: LogRoutes
    let control: NATSClient
    let logger: Logger

    /// Nex's levels: stdout lines are info (4), stderr lines error (2).
    static func level(stream: String?) -> Int { stream == "stderr" ? 2 : 4 }

    func run(_ messages: BusLinkSubscription) async {
        var subjects: [String: String] = [:]
        for await message in messages {
            let tokens = message.subject.split(separator: ".")
            guard tokens.count == 3, let route = routes.route(for: String(tokens[1])) else { continue }
            let subject: String
            if let known = subjects[route.workloadID] {
                subject = known
            } else {
                subject = NexSubject.logs(namespace: route.namespace, node: nodeID, workloadName: route.name,
                                          workloadID: route.workloadID)
                if subjects.count > 4096 { subjects.removeAll() }
                subjects[route.workloadID] = subject
            }
            if let total = message.headers?[AgentLogHeader.droppedLines].flatMap({ Int($0) }) {
                routes.recordDropped(total, agentID: String(tokens[1]), workloadID: route.workloadID)
            }
            let level = Self.level(stream: message.headers?[AgentLogHeader.stream])
            let (lines, leftOut) = AgentLogBatch.lines(of: message.payload)
            if leftOut > 0 {
                logger.warning("agent sent more log lines in one message than the protocol allows; the rest were dropped",
                               metadata: ["agent": "\(tokens[1])", "dropped": "\(leftOut)"])
            }
            for line in lines {
                let record = LogRecord(text: String(decoding: line.readableBytesView, as: UTF8.self), level: level,
                                       id: route.workloadID)
                try? await control.publish(record.json, to: subject)
            }
        }
    }
}
