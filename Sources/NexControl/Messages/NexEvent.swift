import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// A CloudEvents 1.0 event in structured JSON, as published on `$NEX.events.<ns>.<type>`.
public struct NexEvent<Payload: Codable & Sendable>: Codable, Sendable {
    /// `specversion`: the CloudEvents version, always `1.0`.
    public var specVersion: String
    /// `id`: a fresh lowercase UUID per event.
    public var id: String
    /// `source`: the node id for node events, `<node id>-<workload id>` for workload events.
    public var source: String
    /// `type`: the event type (``NexEventType``).
    public var type: NexEventType
    /// `time`: when the event happened, RFC 3339 with fractional seconds.
    public var time: String
    /// `datacontenttype`: always `application/json`.
    public var dataContentType: String
    /// `data`: the event's payload (``NodeStartedEvent``, ``HeartbeatEvent``, ``WorkloadStatusEvent``, …).
    public var data: Payload
    /// `namespace`: the CloudEvents extension attribute the node sets on workload events (the
    /// workload's namespace); nil on node events.
    public var namespace: String?

    enum CodingKeys: String, CodingKey {
        case specVersion = "specversion", id, source, type, time, dataContentType = "datacontenttype", data, namespace
    }

    /// A CloudEvents 1.0 event with a fresh id, `application/json` data and `time` formatted as RFC 3339.
    public init(source: String, type: NexEventType, data: Payload, namespace: String? = nil, time: Date = Date()) {
        self.specVersion = "1.0"
        self.id = UUID().uuidString.lowercased()
        self.source = source
        self.type = type
        self.time = NexEventTime.format(time)
        self.dataContentType = "application/json"
        self.data = data
        self.namespace = namespace
    }
}

/// `time` of an event: RFC 3339 in UTC with milliseconds (`2026-12-06T14:30:00.123Z`).
///
/// Written by hand: the node stamps one event per function invocation, and a `FormatStyle`
/// costs more than the invocation's own hops.
package enum NexEventTime {
    package static func format(_ date: Date) -> String {
        let since1970 = date.timeIntervalSince1970
        var seconds = time_t(since1970.rounded(.down))
        // To the microsecond first: 0.123 is 0.12299… as a Double and must print as .123.
        let milliseconds = min(999, max(0, Int(((since1970 - Double(seconds)) * 1_000_000).rounded()) / 1000))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var text = [UInt8]()
        text.reserveCapacity(24)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var value = value
            while divisor > 0 {
                text.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                value %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4); text.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2); text.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2); text.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2); text.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2); text.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2); text.append(UInt8(ascii: "."))
        digits(milliseconds, 3); text.append(UInt8(ascii: "Z"))
        return String(decoding: text, as: UTF8.self)
    }
}

/// The type of a CloudEvent a node publishes (its `type` and the last token of
/// `$NEX.events.<namespace>.<type>`), with the data each carries.
///
/// A string underneath, so events of types this library does not know (a newer node's) still
/// decode; compare with the constants (`event.type == .workloadDeployed`).
public struct NexEventType: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByStringLiteral,
    CustomStringConvertible
{
    /// The type as it appears on the wire, such as `workload_deployed`.
    public var rawValue: String

    /// The type spelled `rawValue` on the wire.
    public init(rawValue: String) { self.rawValue = rawValue }
    /// The type spelled `rawValue` on the wire, for types this library has no constant for.
    public init(_ rawValue: String) { self.rawValue = rawValue }
    /// The type spelled by a string literal: `let type: NexEventType = "workload_deployed"`.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// Decodes a type from a JSON string; any string is accepted.
    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    /// Encodes the type as a JSON string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// The wire spelling, ``rawValue``.
    public var description: String { rawValue }

    /// `node_started`: a node came up; data ``NodeStartedEvent``.
    public static let nodeStarted: NexEventType = "node_started"
    /// `node_stopped`: a node shut down; data ``NodeStoppedEvent``.
    public static let nodeStopped: NexEventType = "node_stopped"
    /// `heartbeat`: published by every node every 30 seconds; data ``HeartbeatEvent``.
    public static let heartbeat: NexEventType = "heartbeat"
    /// `node_entered_lameduck`: a node entered lame duck mode; data ``LameDuckEnteredEvent``.
    public static let nodeEnteredLameDuck: NexEventType = "node_entered_lameduck"
    /// `workload_deployed`: a workload started; data ``WorkloadStatusEvent`` with `code` 0.
    public static let workloadDeployed: NexEventType = "workload_deployed"
    /// `workload_undeployed`: a workload stopped or exited; data ``WorkloadStatusEvent``.
    public static let workloadUndeployed: NexEventType = "workload_undeployed"
    /// Ours: an essential service is being restarted.
    public static let workloadRestarted: NexEventType = "workload_restarted"
    /// Ours: a node restarted with its identity brought back a workload it ran, under the same
    /// id (after its `workload_deployed`); data ``WorkloadStatusEvent`` with `code` 0.
    public static let workloadRestored: NexEventType = "workload_restored"
    /// Ours: a reschedulable service of a lost (or lame duck) node was started on another node
    /// of its nexus, under the same id (after its `workload_deployed` there); data
    /// ``WorkloadRescheduledEvent``.
    public static let workloadRescheduled: NexEventType = "workload_rescheduled"
    /// `function_exec_succeeded`: a function run completed; data ``FunctionExecSucceededEvent``.
    public static let functionExecSucceeded: NexEventType = "function_exec_succeeded"
    /// `function_exec_failed`: a function run failed; data ``FunctionExecFailedEvent``.
    public static let functionExecFailed: NexEventType = "function_exec_failed"
}

/// `node_started` data.
public struct NodeStartedEvent: Codable, Sendable, Equatable {
    /// `version`: the node's version.
    public var version: String
    /// `id`: the node id (its public server nkey, `N...`).
    public var id: String
    /// `tags`: the node's tags; nil when it has none.
    public var tags: [String: String]?

    /// `node_started` data for node `id`.
    public init(version: String, id: String, tags: [String: String]?) {
        self.version = version; self.id = id; self.tags = tags
    }
}

/// `node_stopped` data.
public struct NodeStoppedEvent: Codable, Sendable, Equatable {
    /// `id`: the node id.
    public var id: String
    /// `graceful`: true when the node stopped its workloads and shut down in order.
    public var graceful: Bool

    /// `node_stopped` data for node `id`.
    public init(id: String, graceful: Bool) {
        self.id = id; self.graceful = graceful
    }
}

/// `heartbeat` data.
public struct HeartbeatEvent: Codable, Sendable, Equatable {
    /// `version`: the node's version.
    public var version: String
    /// `node_id`: the node's public server nkey (`N...`).
    public var nodeID: String
    /// `nexus`: the name of the node's nexus (cluster of nodes); nil when it has none.
    public var nexus: String?
    /// `uptime`: how long the node has run, as `1d2h3m4s`.
    public var uptime: String
    /// `tags`: the node's tags; nil when it has none.
    public var tags: [String: String]?
    /// `running_machines`: the number of workloads running on the node.
    public var runningMachines: Int

    enum CodingKeys: String, CodingKey {
        case version, nodeID = "node_id", nexus, uptime, tags, runningMachines = "running_machines"
    }

    /// `heartbeat` data.
    public init(version: String, nodeID: String, nexus: String? = nil, uptime: String, tags: [String: String]?,
                runningMachines: Int) {
        self.version = version; self.nodeID = nodeID; self.nexus = nexus; self.uptime = uptime; self.tags = tags
        self.runningMachines = runningMachines
    }
}

/// `node_entered_lameduck` data.
public struct LameDuckEnteredEvent: Codable, Sendable, Equatable {
    /// `version`: the node's version.
    public var version: String
    /// `id`: the node id.
    public var id: String

    /// `node_entered_lameduck` data for node `id`.
    public init(version: String, id: String) {
        self.version = version; self.id = id
    }
}

/// A log line of a workload, on `$NEX.logs.<ns>.<node>.<workload_name>.<workload_id>`.
public struct LogRecord: Codable, Sendable, Equatable {
    /// `text`: a line of the workload's output (a line over 64 KiB comes in several records).
    public var text: String
    /// `level`: Nex's 0...6 scale (0 panic … 6 trace): stdout lines are 4 (info), stderr lines 2 (error).
    public var level: Int
    /// The workload id.
    public var id: String

    /// A log record of workload `id`.
    public init(text: String, level: Int, id: String) {
        self.text = text; self.level = level; self.id = id
    }
}

/// `workload_deployed` / `workload_undeployed` data: Nex's `workload_name` and `code`
/// (the exit code when undeployed; negative: killed by that signal), with the id and namespace.
public struct WorkloadStatusEvent: Codable, Sendable, Equatable {
    /// `workload_name`: the workload's name (the `sub` of its JWT).
    public var workloadName: String
    /// `workload_id`: the workload's id.
    public var workloadID: String
    /// `namespace`: the workload's namespace.
    public var namespace: String
    /// `code`: 0 when deployed; when undeployed, the exit code, or minus the signal that killed it.
    public var code: Int
    /// `message`: what happened, in words; nil when there is nothing to add.
    public var message: String?

    enum CodingKeys: String, CodingKey {
        case workloadName = "workload_name", workloadID = "workload_id", namespace, code, message
    }

    /// `workload_deployed` or `workload_undeployed` data.
    public init(workloadName: String, workloadID: String, namespace: String, code: Int, message: String?) {
        self.workloadName = workloadName; self.workloadID = workloadID; self.namespace = namespace
        self.code = code; self.message = message
    }
}

/// `workload_restarted` data.
public struct WorkloadRestartedEvent: Codable, Sendable, Equatable {
    /// `workload_name`: the workload's name.
    public var workloadName: String
    /// `workload_id`: the workload's id.
    public var workloadID: String
    /// `restarts`: how many times the service has been restarted so far.
    public var restarts: Int
    /// `delay_ms`: the wait before this restart, in milliseconds (1 s doubling up to 60 s).
    public var delayMilliseconds: Int
    /// `reason`: why the service ended (its exit, a lost agent, a failed restart).
    public var reason: String

    enum CodingKeys: String, CodingKey {
        case workloadName = "workload_name", workloadID = "workload_id", restarts, delayMilliseconds = "delay_ms", reason
    }

    /// `workload_restarted` data.
    public init(workloadName: String, workloadID: String, restarts: Int, delayMilliseconds: Int, reason: String) {
        self.workloadName = workloadName; self.workloadID = workloadID; self.restarts = restarts
        self.delayMilliseconds = delayMilliseconds; self.reason = reason
    }
}

/// `workload_rescheduled` data (ours).
public struct WorkloadRescheduledEvent: Codable, Sendable, Equatable {
    /// `workload_name`: the workload's name.
    public var workloadName: String
    /// `workload_id`: the workload's id, the same on the new node.
    public var workloadID: String
    /// `namespace`: the workload's namespace.
    public var namespace: String
    /// `from_node`: the node that ran it.
    public var fromNode: String
    /// `to_node`: the node that runs it now.
    public var toNode: String
    /// `reason`: why it moved (the node was not seen for so long, or it left in lame duck mode).
    public var reason: String

    enum CodingKeys: String, CodingKey {
        case workloadName = "workload_name", workloadID = "workload_id", namespace, fromNode = "from_node"
        case toNode = "to_node", reason
    }

    /// `workload_rescheduled` data.
    public init(workloadName: String, workloadID: String, namespace: String, fromNode: String, toNode: String,
                reason: String) {
        self.workloadName = workloadName; self.workloadID = workloadID; self.namespace = namespace
        self.fromNode = fromNode; self.toNode = toNode; self.reason = reason
    }
}

/// `function_exec_succeeded` data (Nex 0.2's names).
public struct FunctionExecSucceededEvent: Codable, Sendable, Equatable {
    /// `workload_name`: the function's workload name.
    public var workloadName: String
    /// `trigger_subject`: the subject of the message that triggered the run.
    public var triggerSubject: String
    /// `elapsed_nanos`: how long the run took, in nanoseconds.
    public var elapsedNanos: UInt64
    /// `namespace`: the workload's namespace.
    public var namespace: String

    enum CodingKeys: String, CodingKey {
        case workloadName = "workload_name", triggerSubject = "trigger_subject", elapsedNanos = "elapsed_nanos", namespace
    }

    /// `function_exec_succeeded` data.
    public init(workloadName: String, triggerSubject: String, elapsedNanos: UInt64, namespace: String) {
        self.workloadName = workloadName; self.triggerSubject = triggerSubject; self.elapsedNanos = elapsedNanos
        self.namespace = namespace
    }
}

/// `function_exec_failed` data (Nex 0.2's names).
public struct FunctionExecFailedEvent: Codable, Sendable, Equatable {
    /// `workload_name`: the function's workload name.
    public var workloadName: String
    /// `trigger_subject`: the subject of the message that triggered the run.
    public var triggerSubject: String
    /// `namespace`: the workload's namespace.
    public var namespace: String
    /// `error`: why the run failed.
    public var error: String

    enum CodingKeys: String, CodingKey {
        case workloadName = "workload_name", triggerSubject = "trigger_subject", namespace, error
    }

    /// `function_exec_failed` data.
    public init(workloadName: String, triggerSubject: String, namespace: String, error: String) {
        self.workloadName = workloadName; self.triggerSubject = triggerSubject; self.namespace = namespace
        self.error = error
    }
}
