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
    /// workload id → lines the node itself dropped: over the rate, which only an agent that does
    /// not keep its own limit sends.
    private let droppedByNode = Mutex<[String: Int]>([:])
    /// workload id → lines forwarded as log records.
    private let forwarded = Mutex<[String: Int]>([:])

    func recordForwarded(_ count: Int, workloadID: String) {
        forwarded.withLock { $0[workloadID, default: 0] += count }
    }

    /// Lines of the workload forwarded so far.
    func forwardedLines(of workloadID: String) -> Int { forwarded.withLock { $0[workloadID] ?? 0 } }

    func set(_ agentID: String, _ route: LogRoute) { routes.withLock { $0[agentID] = route } }
    func remove(_ agentID: String) { routes.withLock { $0[agentID] = nil } }
    func route(for agentID: String) -> LogRoute? { routes.withLock { $0[agentID] } }

    func recordDropped(_ total: Int, agentID: String, workloadID: String) {
        dropped.withLock { $0[workloadID, default: [:]][agentID] = total }
    }

    func recordDroppedByNode(_ count: Int, workloadID: String) {
        droppedByNode.withLock { $0[workloadID, default: 0] += count }
    }

    /// Lines dropped for the workload so far, nil when none.
    func droppedLines(of workloadID: String) -> Int? {
        let byAgents = dropped.withLock { $0[workloadID]?.values.reduce(0, +) }
        let byNode = droppedByNode.withLock { $0[workloadID] }
        return byAgents == nil && byNode == nil ? nil : (byAgents ?? 0) + (byNode ?? 0)
    }

    /// Forgets a workload that is gone.
    func forget(workloadID: String) {
        dropped.withLock { $0[workloadID] = nil }
        droppedByNode.withLock { $0[workloadID] = nil }
        forwarded.withLock { $0[workloadID] = nil }
    }
}

/// Turns each line an agent publishes on `hostint.<id>.logs` (in batches, ``AgentLogBatch``)
/// into a ``LogRecord`` on `$NEX.logs.<ns>.<node>.<workload_name>.<workload_id>`.
///
/// The agent keeps the workload to its log rate; the node holds each agent to the same rate
/// again (``LogRateLimiter``), so an agent that does not (a compromised one) cannot make the node
/// publish more than that: what is over it is dropped and counted with the workload's dropped
/// lines.
struct LogForwarder: Sendable {
    let nodeID: String
    let routes: LogRoutes
    let control: NATSClient
    let logger: Logger
    let rate: LogRate

    /// The node's bound for an agent whose workloads may log at `rate`: twice that, so lines an
    /// honest agent admitted and the bus delivered in a burst (after backpressure) still pass.
    static func nodeRate(for rate: LogRate) -> LogRate {
        LogRate(linesPerSecond: rate.linesPerSecond.multipliedReportingOverflow(by: 2).overflow ? .max : rate.linesPerSecond * 2,
                bytesPerSecond: rate.bytesPerSecond.multipliedReportingOverflow(by: 2).overflow ? .max : rate.bytesPerSecond * 2)
    }

    /// Nex's levels: stdout lines are info (4), stderr lines error (2).
    static func level(stream: String?) -> Int { stream == "stderr" ? 2 : 4 }

    func run(_ messages: BusLinkSubscription) async {
        var subjects: [String: String] = [:]
        var limiters: [String: LogRateLimiter] = [:]
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
            let agentID = String(tokens[1])
            if limiters[agentID] == nil, limiters.count > 4096 { limiters.removeAll() }
            var limiter = limiters[agentID] ?? LogRateLimiter(rate: rate)
            defer { limiters[agentID] = limiter }
            var overRate = 0
            defer { routes.recordForwarded(lines.count - overRate, workloadID: route.workloadID) }
            for line in lines {
                guard message.headers?[AgentLogHeader.droppedLines] != nil
                        || limiter.admit(bytes: line.readableBytes) != .drop else {
                    overRate += 1
                    continue
                }
                let record = LogRecord(text: String(decoding: line.readableBytesView, as: UTF8.self), level: level,
                                       id: route.workloadID)
                try? await control.publish(record.json, to: subject)
            }
            if overRate > 0 { routes.recordDroppedByNode(overRate, workloadID: route.workloadID) }
        }
    }
}
