import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Synchronization
import Testing

/// A native workload for end-to-end tests: a shell script written to a temporary directory,
/// and what it takes to deploy it to a real node.
struct WorkloadFixture {
    let directory: TemporaryDirectory
    let path: String
    let issuer: NKeyPair
    let sender: XKeyPair

    /// Prints its identity and environment, then ticks until stopped (or runs `body`).
    static let defaultScript = """
        #!/bin/sh
        echo "hello $NEX_WORKLOAD_NAME id=$NEX_WORKLOAD_ID ns=$NEX_NAMESPACE greeting=$GREETING seed=${NEX_AGENT_NKEY_SEED:-none}"
        echo "pid=$$ ppid=$PPID"
        echo "to stderr" >&2
        trap 'echo "got TERM"; exit 0' TERM
        i=0
        while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done
        """

    init(script: String = WorkloadFixture.defaultScript, executable: Bool = true, issuer: NKeyPair? = nil) throws {
        directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-workload-")
        path = try directory.write(script, to: "workload.sh")
        if executable { chmod(path, 0o755) }
        self.issuer = try issuer ?? NKeyPair.generate(.account)
        sender = try XKeyPair.generate()
    }

    /// A fixture of an executable already built in `directory` (under ``NodeUser/artifactRoot``).
    init(executable: String, in directory: TemporaryDirectory) throws {
        self.directory = directory
        path = executable
        issuer = try NKeyPair.generate(.account)
        sender = try XKeyPair.generate()
    }

    var hash: String { get throws { try ArtifactDigest.sha256Hex(ofFile: path) } }

    func submission(name: String, environment: [String: String] = [:], essential: Bool = false,
                    hash: String? = nil) throws -> WorkloadSubmission {
        try WorkloadSubmission(name: name, location: .file(path: path), artifactHash: hash ?? self.hash,
                               environment: environment, essential: essential)
    }

    /// The workload JWT of this fixture's last deploy that went through (for replay tests).
    let lastDeployToken = TokenBox()

    final class TokenBox: Sendable {
        let value = Mutex<String?>(nil)
    }

    func deploy(_ nex: NexClient, node: String, name: String, environment: [String: String] = [:],
                essential: Bool = false, namespace: String = "default", limits: ResourceLimits? = nil,
                network: WorkloadNetwork? = nil) async throws -> RunResponse
    {
        let info = try await nex.info(namespace: namespace, node: node)
        var request = try submission(name: name, environment: environment, essential: essential)
            .deployRequest(issuer: issuer, sender: sender, targetNode: node, targetXKey: info.publicXKey)
        request.limits = limits
        request.network = network
        let response = try await nex.deploy(namespace: namespace, node: node, request: request)
        lastDeployToken.value.withLock { $0 = request.workloadJWT }
        return response
    }

    func stop(_ nex: NexClient, node: String, id: String, name: String, namespace: String = "default") async throws
        -> StopResponse
    {
        try await nex.stopWorkload(namespace: namespace, node: node, id: id, name: name, issuer: issuer)
    }
}

/// Log lines of one workload, recorded from the moment it is created.
final class LogRecorder: Sendable {
    private let lines = Mutex<[LogRecord]>([])
    private let task = Mutex<Task<Void, Never>?>(nil)

    static func start(_ nex: NexClient, namespace: String = "default", workloadName: String = "*") async throws -> LogRecorder {
        let recorder = LogRecorder()
        let subscription = try await nex.connection.subscribe(
            to: NexSubject.logs(namespace: namespace, node: "*", workloadName: workloadName, workloadID: "*"))
        try await nex.connection.flush()
        let task = Task { [recorder] in
            for await message in subscription {
                if let record = try? JSONDecoder().decode(LogRecord.self, from: Data(message.payload.readableBytesView)) {
                    recorder.lines.withLock { $0.append(record) }
                }
            }
        }
        recorder.task.withLock { $0 = task }
        return recorder
    }

    var all: [LogRecord] { lines.withLock { $0 } }
    var texts: [String] { all.map(\.text) }

    /// The first line starting with `prefix`.
    @discardableResult
    func waitFor(_ prefix: String, timeout: Duration = .seconds(10)) async throws -> LogRecord {
        try await waitForValue(timeout: timeout, "a log line starting with '\(prefix)'; got \(texts.suffix(5))") {
            all.first { $0.text.hasPrefix(prefix) }
        }
    }

    deinit { task.withLock { $0?.cancel() } }
}

/// Live processes whose command line contains `marker`.
func processes(withMarker marker: String) -> [Int32] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return names.compactMap { name -> Int32? in
        guard let pid = Int32(name), processIsAlive(pid),
              let data = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") else { return nil }
        return String(decoding: data, as: UTF8.self).contains(marker) ? pid : nil
    }
}

/// The refusal message of a control request (records an issue if it was accepted).
func refusal(_ body: () async throws -> some Any, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
    do {
        let result = try await body()
        Issue.record("accepted: \(result)", sourceLocation: sourceLocation)
        return ""
    } catch let error as NexControlError {
        return "\(error)"
    }
}

/// `pid=N ppid=M` from the fixture's second line.
/// The first process of the workload that wrote `record` and its parent (the agent), as the
/// host sees them: a sandboxed workload's own `$$` and `$PPID` are pids of its pid namespace.
/// Found by the workload id in the environment of the process whose parent lacks it.
func pids(of record: LogRecord) -> (pid: Int32, ppid: Int32)? {
    let needle = "NEX_WORKLOAD_ID=\(record.id)"
    func hasID(_ pid: Int32) -> Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
        return data.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == needle }
    }
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(name), hasID(pid),
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }),
              let ppid = Int32(line.dropFirst(5).trimmingCharacters(in: .whitespaces)), !hasID(ppid) else { continue }
        return (pid, ppid)
    }
    return nil
}
