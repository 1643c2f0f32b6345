import FoundationEssentials
import NexControl
import NIOCore

/// `hostint.<id>.handshake` (agent to node, request): the agent is up and listening.
public struct AgentHandshake: Codable, Sendable, Equatable {
    public var id: String
    public var pid: Int32
    public var version: String
    /// RFC 3339.
    public var startTime: String

    enum CodingKeys: String, CodingKey { case id, pid, version, startTime = "start_time" }

    public init(id: String, pid: Int32, version: String, startTime: String) {
        self.id = id; self.pid = pid; self.version = version; self.startTime = startTime
    }
}

/// The rate at which the agent forwards one workload's output lines to its node (the node's
/// `log_rate_limit`); lines over it are dropped and counted.
public struct LogRate: Codable, Sendable, Equatable {
    public var linesPerSecond: Int
    public var bytesPerSecond: Int

    /// 2,000 lines and 1 MiB a second: far above what a service logs, far below what a
    /// loop printing flat out produces.
    public static let `default` = LogRate(linesPerSecond: 2_000, bytesPerSecond: 1 << 20)

    enum CodingKeys: String, CodingKey { case linesPerSecond = "lines_per_second", bytesPerSecond = "bytes_per_second" }

    public init(linesPerSecond: Int, bytesPerSecond: Int) {
        self.linesPerSecond = linesPerSecond
        self.bytesPerSecond = bytesPerSecond
    }
}

/// `agentint.<id>.deploy` (node to agent, request): run this workload. The environment is
/// already opened by the node (the bus is loopback-only and per-agent). The agent ALWAYS
/// answers with an ``AgentDeployResponse``.
public struct AgentDeployRequest: Codable, Sendable, Equatable {
    public var workloadID: String
    public var workloadName: String
    public var namespace: String
    public var workloadType: WorkloadType
    public var argv: [String]
    public var environment: [String: String]
    public var essential: Bool
    /// SHA-256 hex of the artifact, checked by the node.
    public var hash: String
    public var totalBytes: Int
    /// The artifact, a file inside the agent's own directory.
    public var artifactPath: String
    /// Memory, open files and processes: the deploy's, or the node's defaults.
    public var limits: ResourceLimits
    public var logRate: LogRate
    /// Milliseconds between SIGTERM and SIGKILL when the workload is stopped.
    public var stopGraceMilliseconds: Int
    public var triggerSubjects: [String]

    enum CodingKeys: String, CodingKey {
        case workloadID = "workload_id", workloadName = "workload_name", namespace
        case workloadType = "workload_type", argv, environment, essential, hash, totalBytes = "total_bytes"
        case artifactPath = "artifact_path", limits, logRate = "log_rate", stopGraceMilliseconds = "stop_grace_ms"
        case triggerSubjects = "trigger_subjects"
    }

    public init(workloadID: String, workloadName: String, namespace: String, workloadType: WorkloadType,
                argv: [String] = [], environment: [String: String] = [:], essential: Bool = false, hash: String,
                totalBytes: Int, artifactPath: String, limits: ResourceLimits = ResourceLimits(), logRate: LogRate = .default,
                stopGraceMilliseconds: Int = 10_000, triggerSubjects: [String] = []) {
        self.workloadID = workloadID; self.workloadName = workloadName; self.namespace = namespace
        self.workloadType = workloadType; self.argv = argv; self.environment = environment
        self.essential = essential; self.hash = hash; self.totalBytes = totalBytes
        self.artifactPath = artifactPath; self.limits = limits; self.logRate = logRate
        self.stopGraceMilliseconds = stopGraceMilliseconds; self.triggerSubjects = triggerSubjects
    }
}

/// The agent's answer to a deploy: `accepted` only once the workload runs.
public struct AgentDeployResponse: Codable, Sendable, Equatable {
    public var accepted: Bool
    public var message: String
    /// The workload's process id when accepted.
    public var pid: Int32?
    /// What was applied, e.g. `["rlimit_as", "rlimit_nofile", "rlimit_nproc"]`, plus `cgroup` when one was used.
    public var limitsApplied: [String]
    /// A function's agent that can serve its triggers itself (it has a socket channel): the
    /// public user nkey (`U...`) it made for that connection. The node may sign a user JWT for
    /// it (``AgentTriggerSetup``); the seed never leaves the agent.
    public var triggerKey: String?

    enum CodingKeys: String, CodingKey {
        case accepted, message, pid, limitsApplied = "limits_applied", triggerKey = "trigger_key"
    }

    public init(accepted: Bool, message: String, pid: Int32? = nil, limitsApplied: [String] = [],
                triggerKey: String? = nil) {
        self.accepted = accepted; self.message = message; self.pid = pid; self.limitsApplied = limitsApplied
        self.triggerKey = triggerKey
    }
}

/// `agentint.<id>.triggers` (node to agent, request): serve the function's trigger subjects on
/// a NATS connection of the agent's own, replying to requesters directly. The node first sends
/// the connection's socket, connected to the NATS server, on the agent's socket channel
/// (``AgentEnvironment/socketDescriptor``); the agent logs in with ``jwt`` and its trigger
/// key. A later setup (a renewal) replaces the connection: the new one subscribes before the
/// old one drains.
public struct AgentTriggerSetup: Codable, Sendable, Equatable {
    /// A user JWT for the agent's trigger key: subscribe only to ``subjects`` in ``queue``,
    /// publish only replies, until it expires.
    public var jwt: String
    /// The server the socket is connected to, for logs (never dialed).
    public var server: String
    public var subjects: [String]
    public var queue: String

    enum CodingKeys: String, CodingKey { case jwt, server, subjects, queue }

    public init(jwt: String, server: String, subjects: [String], queue: String) {
        self.jwt = jwt; self.server = server; self.subjects = subjects; self.queue = queue
    }
}

/// The agent's answer to an ``AgentTriggerSetup``: `serving` once every subject is subscribed.
public struct AgentTriggerSetupResponse: Codable, Sendable, Equatable {
    public var serving: Bool
    public var message: String

    public init(serving: Bool, message: String) {
        self.serving = serving; self.message = message
    }
}

/// `hostint.<id>.invocations` (agent to node): invocations the agent answered on its own
/// trigger connection, in batches (at most ``maximumCount``, at least every 100 ms while
/// any are waiting). The node turns each into a `function_exec_succeeded` or
/// `function_exec_failed` event and its metrics.
public struct AgentInvocationReport: Codable, Sendable, Equatable {
    public static let maximumCount = 1024

    public struct Invocation: Codable, Sendable, Equatable {
        /// The subject the message arrived on.
        public var subject: String
        /// From the message's arrival at the agent to its reply.
        public var elapsedNanoseconds: UInt64
        /// Why it failed (what the requester got in `Nex-Function-Error`); nil: it succeeded.
        public var error: String?

        enum CodingKeys: String, CodingKey { case subject, elapsedNanoseconds = "elapsed_ns", error }

        public init(subject: String, elapsedNanoseconds: UInt64, error: String? = nil) {
            self.subject = subject; self.elapsedNanoseconds = elapsedNanoseconds; self.error = error
        }
    }

    public var invocations: [Invocation]

    public init(invocations: [Invocation]) { self.invocations = invocations }
}

/// `agentint.<id>.undeploy` reply: the workload was stopped (SIGTERM, then SIGKILL after the grace period).
public struct AgentUndeployResponse: Codable, Sendable, Equatable {
    public var stopped: Bool
    /// Exit code, negative for the signal that ended it; nil when nothing ran.
    public var exitCode: Int32?
    public var message: String?

    enum CodingKeys: String, CodingKey { case stopped, exitCode = "exit_code", message }

    public init(stopped: Bool, exitCode: Int32? = nil, message: String? = nil) {
        self.stopped = stopped; self.exitCode = exitCode; self.message = message
    }
}

/// `agentint.<id>.ping` reply.
public struct AgentPingResponse: Codable, Sendable, Equatable {
    public var id: String
    /// The workload this agent runs, if any.
    public var workloadID: String?
    public var running: Bool

    enum CodingKeys: String, CodingKey { case id, workloadID = "workload_id", running }

    public init(id: String, workloadID: String?, running: Bool) {
        self.id = id; self.workloadID = workloadID; self.running = running
    }
}

/// `hostint.<id>.events.<type>` (agent to node, publish): `workload_deployed` and `workload_undeployed`.
public struct AgentWorkloadEvent: Codable, Sendable, Equatable {
    public var workloadID: String
    public var workloadName: String
    /// 0 when deployed; the exit code (negative: the signal) when undeployed.
    public var code: Int32
    public var message: String?

    enum CodingKeys: String, CodingKey { case workloadID = "workload_id", workloadName = "workload_name", code, message }

    public init(workloadID: String, workloadName: String, code: Int32, message: String? = nil) {
        self.workloadID = workloadID; self.workloadName = workloadName; self.code = code; self.message = message
    }
}

/// `hostint.<id>.logs` (agent to node, publish): the body is one line of output, without its
/// newline; this header says which stream it came from (`stdout` or `stderr`).
/// `hostint.<id>.logs` (agent to node): output lines of the workload, joined by `\n` (a line
/// never holds one), at most ``maximumLines`` lines and ``maximumBytes`` bytes per message.
public enum AgentLogBatch {
    public static let maximumLines = 65_536
    public static let maximumBytes = 512 * 1024

    /// The lines of one message; a message with more than ``maximumLines`` lines keeps the first
    /// ones and says how many it left out.
    public static func lines(of payload: ByteBuffer) -> (lines: [ByteBuffer], leftOut: Int) {
        var lines: [ByteBuffer] = []
        var leftOut = 0
        func take(_ line: ByteBuffer) {
            if lines.count < maximumLines { lines.append(line) } else { leftOut += 1 }
        }
        var rest = payload
        while let newline = rest.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            take(rest.readSlice(length: newline - rest.readerIndex)!)
            rest.moveReaderIndex(forwardBy: 1)
        }
        take(rest)
        return (lines, leftOut)
    }
}

public enum AgentLogHeader {
    public static let stream = "x-nex-log-stream"
    /// On the agent's notice that output lines were dropped (rate limit): the total dropped
    /// since the workload started, in decimal.
    public static let droppedLines = "x-nex-log-dropped"
}

/// `agentint.<id>.trigger` (node to agent, request): the body is the message that arrived on
/// one of the function's trigger subjects; the reply body is the function's result.
public enum AgentTriggerHeader {
    /// On the request: the subject the message arrived on.
    public static let subject = "x-nex-trigger-subject"
    /// On the reply: the invocation failed, and why (the body is then empty).
    public static let error = "Nex-Function-Error"
    /// On the reply: nanoseconds the function ran (Nex 0.2's header).
    public static let runtime = "x-nex-runtime-ns"
}

/// What a function invocation came to.
public enum AgentTriggerResult: Sendable, Equatable {
    case reply([UInt8], runtimeNanoseconds: UInt64)
    case failed(String)
}

/// The agent-protocol verbs after `agentint.<id>.` / `hostint.<id>.`.
public enum AgentVerb {
    public static let handshake = "handshake"
    public static let deploy = "deploy"
    public static let undeploy = "undeploy"
    public static let ping = "ping"
    public static let trigger = "trigger"
    public static let rpc = "rpc"
    public static let logs = "logs"
    public static let events = "events"
    public static let workloadDeployed = "workload_deployed"
    public static let workloadUndeployed = "workload_undeployed"
    /// Node to agent: serve the function's triggers directly (``AgentTriggerSetup``).
    public static let triggers = "triggers"
    /// Agent to node: invocations answered directly (``AgentInvocationReport``).
    public static let invocations = "invocations"
    /// Agent event: its own trigger connection closed (the server went, or its JWT expired)
    /// while it was serving; the node answers on its own until it sets up another.
    public static let triggersLost = "triggers_lost"
}
