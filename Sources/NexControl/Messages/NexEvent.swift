import FoundationEssentials

/// A CloudEvents 1.0 event in structured JSON, as published on `$NEX.events.<ns>.<type>`.
public struct NexEvent<Payload: Codable & Sendable>: Codable, Sendable {
    public var specVersion: String
    public var id: String
    public var source: String
    public var type: String
    /// RFC 3339.
    public var time: String
    public var dataContentType: String
    public var data: Payload
    /// Extension attribute set on workload events republished by the node.
    public var namespace: String?

    enum CodingKeys: String, CodingKey {
        case specVersion = "specversion", id, source, type, time, dataContentType = "datacontenttype", data, namespace
    }

    public init(source: String, type: String, data: Payload, namespace: String? = nil, time: Date = Date()) {
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

enum NexEventTime {
    static func format(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true)
            .timeSeparator(.colon).timeZone(separator: .omitted))
    }
}

/// The event types a node publishes, with their data.
public enum NexEventType {
    public static let nodeStarted = "node_started"
    public static let nodeStopped = "node_stopped"
    public static let heartbeat = "heartbeat"
    public static let nodeEnteredLameDuck = "node_entered_lameduck"
    public static let workloadDeployed = "workload_deployed"
    public static let workloadUndeployed = "workload_undeployed"
    /// Ours: an essential service is being restarted.
    public static let workloadRestarted = "workload_restarted"
    public static let functionExecSucceeded = "function_exec_succeeded"
    public static let functionExecFailed = "function_exec_failed"
}

/// `node_started` data.
public struct NodeStartedEvent: Codable, Sendable, Equatable {
    public var version: String
    public var id: String
    public var tags: [String: String]?

    public init(version: String, id: String, tags: [String: String]?) {
        self.version = version; self.id = id; self.tags = tags
    }
}

/// `node_stopped` data.
public struct NodeStoppedEvent: Codable, Sendable, Equatable {
    public var id: String
    public var graceful: Bool

    public init(id: String, graceful: Bool) {
        self.id = id; self.graceful = graceful
    }
}

/// `heartbeat` data.
public struct HeartbeatEvent: Codable, Sendable, Equatable {
    public var version: String
    public var nodeID: String
    public var nexus: String?
    public var uptime: String
    public var tags: [String: String]?
    public var runningMachines: Int

    enum CodingKeys: String, CodingKey {
        case version, nodeID = "node_id", nexus, uptime, tags, runningMachines = "running_machines"
    }

    public init(version: String, nodeID: String, nexus: String? = nil, uptime: String, tags: [String: String]?,
                runningMachines: Int) {
        self.version = version; self.nodeID = nodeID; self.nexus = nexus; self.uptime = uptime; self.tags = tags
        self.runningMachines = runningMachines
    }
}

/// `node_entered_lameduck` data.
public struct LameDuckEnteredEvent: Codable, Sendable, Equatable {
    public var version: String
    public var id: String

    public init(version: String, id: String) {
        self.version = version; self.id = id
    }
}

/// A log line of a workload, on `$NEX.logs.<ns>.<node>.<workload_name>.<workload_id>`.
public struct LogRecord: Codable, Sendable, Equatable {
    public var text: String
    /// Nex's 0...6 scale.
    public var level: Int
    /// The workload id.
    public var id: String

    public init(text: String, level: Int, id: String) {
        self.text = text; self.level = level; self.id = id
    }
}

/// `workload_deployed` / `workload_undeployed` data: Nex's `workload_name` and `code`
/// (the exit code when undeployed; negative: killed by that signal), with the id and namespace.
public struct WorkloadStatusEvent: Codable, Sendable, Equatable {
    public var workloadName: String
    public var workloadID: String
    public var namespace: String
    public var code: Int
    public var message: String?

    enum CodingKeys: String, CodingKey {
        case workloadName = "workload_name", workloadID = "workload_id", namespace, code, message
    }

    public init(workloadName: String, workloadID: String, namespace: String, code: Int, message: String?) {
        self.workloadName = workloadName; self.workloadID = workloadID; self.namespace = namespace
        self.code = code; self.message = message
    }
}

/// `workload_restarted` data.
public struct WorkloadRestartedEvent: Codable, Sendable, Equatable {
    public var workloadName: String
    public var workloadID: String
    public var restarts: Int
    public var delayMilliseconds: Int
    public var reason: String

    enum CodingKeys: String, CodingKey {
        case workloadName = "workload_name", workloadID = "workload_id", restarts, delayMilliseconds = "delay_ms", reason
    }

    public init(workloadName: String, workloadID: String, restarts: Int, delayMilliseconds: Int, reason: String) {
        self.workloadName = workloadName; self.workloadID = workloadID; self.restarts = restarts
        self.delayMilliseconds = delayMilliseconds; self.reason = reason
    }
}

/// `function_exec_succeeded` data (Nex 0.2's names).
public struct FunctionExecSucceededEvent: Codable, Sendable, Equatable {
    public var workloadName: String
    public var triggerSubject: String
    public var elapsedNanos: UInt64
    public var namespace: String

    enum CodingKeys: String, CodingKey {
        case workloadName = "workload_name", triggerSubject = "trigger_subject", elapsedNanos = "elapsed_nanos", namespace
    }

    public init(workloadName: String, triggerSubject: String, elapsedNanos: UInt64, namespace: String) {
        self.workloadName = workloadName; self.triggerSubject = triggerSubject; self.elapsedNanos = elapsedNanos
        self.namespace = namespace
    }
}

/// `function_exec_failed` data (Nex 0.2's names).
public struct FunctionExecFailedEvent: Codable, Sendable, Equatable {
    public var workloadName: String
    public var triggerSubject: String
    public var namespace: String
    public var error: String

    enum CodingKeys: String, CodingKey {
        case workloadName = "workload_name", triggerSubject = "trigger_subject", namespace, error
    }

    public init(workloadName: String, triggerSubject: String, namespace: String, error: String) {
        self.workloadName = workloadName; self.triggerSubject = triggerSubject; self.namespace = namespace
        self.error = error
    }
}
