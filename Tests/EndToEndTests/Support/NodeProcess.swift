import Foundation
import NexWorkloads
import NATSTestSupport
import NATSWire
import NexControl
import Synchronization

/// A real `nex-node up` process for a test, running as the unprivileged ``NodeUser``.
///
/// Its stdout and stderr go to files in a private temporary directory (see ``log``). The
/// process is always killed (SIGKILL) when the value is released, so a failing test leaves no
/// orphan behind.
///
/// ```swift
/// let node = try await NodeProcess.start(server: server, tags: ["zone": "a"])
/// let nex = try await controlClient(server)
/// _ = try await nex.ping(node: node.nodeID)
/// node.terminate()
/// #expect(try await node.waitForExit() == 0)
/// ```
final class NodeProcess: Sendable {
    /// What `start` needs to know; the defaults make a plain node.
    struct Launch: Sendable {
        var tags: [String: String] = [:]
        var heartbeatSeconds: Double?
        /// A config file's contents; written next to the logs and passed with `--config`.
        var config: String?
        /// Extra environment (e.g. `NOTIFY_SOCKET`).
        var environment: [String: String] = [:]
        /// An existing state directory (to test a restart); else a fresh one.
        var stateDirectory: String?
        var extraArguments: [String] = []
        /// `--allow-file-root` directories: by default ``NodeUser/artifactRoot``, where the
        /// tests' artifacts live.
        var fileRoots: [String] = [NodeUser.artifactRoot]
        /// Start the node as the tests' own user (root in CI) instead of ``NodeUser``: a node
        /// run as root maps its sandboxes' ids itself and makes cgroups anywhere it likes.
        var asTestUser = false
        /// TLS of the test's own client that waits for the node to answer (a server that
        /// requires TLS).
        var readinessTLS: NATSTLSOptions?
        /// Credentials of that client (a server in operator mode).
        var readinessAuth: NATSAuth = .none
    }

    let process: ChildProcess
    /// The node's state directory (identity files).
    let stateDirectory: String
    let stdoutPath: String
    let stderrPath: String
    /// The node id, read from `<state>/node.nk` once the node has written it.
    let nodeID: String
    private let directory: TemporaryDirectory
    /// The cgroup the node was started in (as the unit's `Delegate=yes` gives it one).
    let cgroup: DelegatedCgroup?

    var pid: Int32 { process.pid }
    var isRunning: Bool { process.isRunning }

    /// What the node wrote so far, stderr then stdout.
    var log: String {
        let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        let stdout = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
        return stdout.isEmpty ? stderr : stderr + "\n--- stdout ---\n" + stdout
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    private init(process: ChildProcess, stateDirectory: String, stdoutPath: String, stderrPath: String, nodeID: String,
                 directory: TemporaryDirectory, cgroup: DelegatedCgroup?) {
        self.cgroup = cgroup
        self.process = process
        self.stateDirectory = stateDirectory
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        self.nodeID = nodeID
        self.directory = directory
    }

    /// Launches `nex-node up -s <url> --state-dir <dir> ...` and returns once the node answers
    /// `$NEX.PING.<id>` on `server` (within `readyTimeout`).
    static func start(
        server: NATSServer, _ launch: Launch = Launch(), readyTimeout: Duration = .seconds(10)
    ) async throws -> NodeProcess {
        let node = try await spawn(url: server.url, launch)
        do {
            try await node.waitUntilAnswering(url: server.url, tls: launch.readinessTLS, auth: launch.readinessAuth,
                                              timeout: readyTimeout)
        } catch {
            node.kill()
            throw error
        }
        return node
    }

    static func start(server: NATSServer, tags: [String: String]) async throws -> NodeProcess {
        try await start(server: server, Launch(tags: tags))
    }

    /// Launches the process and waits only for its identity file: for tests that watch the
    /// start itself (events, READY=1). Throws if the node exits before writing its identity.
    /// An empty `url` passes no `-s`.
    static func spawn(url: String, _ launch: Launch = Launch(), identityTimeout: Duration = .seconds(10)) async throws
        -> NodeProcess
    {
        let directory = try TemporaryDirectory(prefix: "nex-e2e-node-")
        let stateDirectory = launch.stateDirectory ?? directory.appending("state")
        try NodeUser.prepareStateDirectory(stateDirectory, forNodeUser: !launch.asTestUser)
        // No URL: no -s (for --dev, which starts its own server only when none is given).
        var arguments = ["up"] + (url.isEmpty ? [] : ["-s", url]) + ["--state-dir", stateDirectory]
        for root in launch.fileRoots { arguments += ["--allow-file-root", root] }
        for (key, value) in launch.tags.sorted(by: { $0.key < $1.key }) { arguments += ["--tag", "\(key)=\(value)"] }
        if let heartbeat = launch.heartbeatSeconds { arguments += ["--heartbeat", String(heartbeat)] }
        if let config = launch.config {
            // Readable by the node's user, also when its state directory lies elsewhere (which
            // otherwise is what opens this directory to it).
            let file = try directory.write(config, to: "node.json")
            chmod(directory.path, 0o711)
            chmod(file, 0o644)
            arguments += ["--config", file]
        }
        arguments += launch.extraArguments

        let stdoutPath = directory.appending("stdout.log"), stderrPath = directory.appending("stderr.log")
        FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let cgroup = launch.asTestUser ? nil : DelegatedCgroup.make()
        var command = launch.asTestUser ? (executable: try NodeUser.nexNode, arguments: arguments)
            : NodeUser.command(try NodeUser.nexNode, arguments)
        if let cgroup { command = cgroup.wrap(command) }
        let process = try ChildProcess(
            executable: command.executable, arguments: command.arguments,
            environment: ChildEnvironment.base().merging(launch.environment) { $1 },
            outputPath: stdoutPath, errorPath: stderrPath)

        // The identity is written before the node connects; read the id from it.
        let seedPath = stateDirectory + "/node.nk"
        let deadline = ContinuousClock.now + identityTimeout
        var nodeID: String?
        while nodeID == nil {
            if let text = try? String(contentsOfFile: seedPath, encoding: .utf8),
               let pair = try? NKeyPair(seed: text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                nodeID = pair.publicKey
                break
            }
            if !process.isRunning || ContinuousClock.now >= deadline {
                process.stop(grace: .zero)
                cgroup?.remove()
                let log = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
                throw NodeProcessError(
                    "nex-node \(arguments.joined(separator: " ")) wrote no identity to \(seedPath) "
                        + "(exit status \(process.exitStatus.map(String.init) ?? "running"))",
                    log: log)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return NodeProcess(process: process, stateDirectory: stateDirectory, stdoutPath: stdoutPath,
                           stderrPath: stderrPath, nodeID: nodeID!, directory: directory, cgroup: cgroup)
    }

    /// Polls `$NEX.PING.<id>` on a private connection until the node answers.
    func waitUntilAnswering(url: String, tls: NATSTLSOptions? = nil, auth: NATSAuth = .none,
                            timeout: Duration = .seconds(10)) async throws {
        var options = TestConnection.options(url: url)
        options.tls = tls
        options.auth = auth
        try await withConnectedClient(options: options) { client in
            let nex = NexClient(connection: client, timeout: .milliseconds(250))
            let deadline = ContinuousClock.now + timeout
            var lastError: (any Error)?
            while ContinuousClock.now < deadline {
                guard isRunning else {
                    throw NodeProcessError("nex-node exited with status \(process.exitStatus ?? -1) before answering", log: log)
                }
                do {
                    let pong = try await nex.ping(node: nodeID)
                    if pong.nodeID == nodeID { return }
                } catch {
                    lastError = error
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw NodeProcessError("nex-node \(nodeID) did not answer a ping within \(timeout) (last: \(lastError.map { "\($0)" } ?? "none"))", log: log)
        }
    }

    /// SIGTERM: asks the node to stop gracefully.
    func terminate() {
        if process.isRunning { Foundation.kill(pid, SIGTERM) }
    }

    /// Kills the node (SIGKILL) and waits until the process is gone.
    func stop() async {
        kill()
        _ = try? await waitForExit()
    }

    /// SIGKILL.
    func kill() {
        if process.isRunning { Foundation.kill(pid, SIGKILL) }
    }

    /// Waits for the process to end and returns its exit code (a signal number is returned as
    /// `128 + signal`, as a shell shows it). Kills it and throws past `timeout`.
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(10)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                kill()
                throw NodeProcessError("nex-node \(nodeID) did not exit within \(timeout)", log: log)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let status = process.exitStatus ?? -1
        return status < 0 ? 128 - status : status  // a signal shows as 128 + its number, as in a shell
    }

    deinit {
        process.stop(grace: .zero)
        if let cgroup {
            // Its sandboxes die with their pid 1 moments after the node: wait for them.
            for _ in 0..<100 where cgroup.hasProcesses { usleep(10_000) }
            cgroup.remove()
        }
    }
}

struct NodeProcessError: Error, CustomStringConvertible {
    var message: String
    var log: String
    init(_ message: String, log: String) {
        self.message = message
        self.log = log
    }
    var description: String { log.isEmpty ? message : "\(message)\n--- nex-node output ---\n\(log)\n--- end ---" }
}

/// Connection settings for the tests' own clients: quick reconnects.
enum TestConnection {
    static func options(url: String) -> NATSClientOptions {
        var options = NATSClientOptions(servers: [url])
        options.name = "e2e-test"
        options.reconnectWait = .milliseconds(50)
        options.maxReconnectWait = .milliseconds(250)
        options.reconnectJitter = .milliseconds(20)
        options.maxReconnectAttempts = -1
        options.connectTimeout = .seconds(3)
        return options
    }
}

/// Starts a node on `server` (see ``NodeProcess/start(server:_:readyTimeout:)``), runs `body`
/// with it, and kills it and waits for it to be gone when `body` returns or throws.
func withNode<Result>(
    isolation: isolated (any Actor)? = #isolation,
    server: NATSServer,
    _ launch: NodeProcess.Launch = NodeProcess.Launch(),
    _ body: (NodeProcess) async throws -> Result
) async throws -> Result {
    let node = try await NodeProcess.start(server: server, launch)
    return try await withTeardown(isolation: isolation, { await node.stop() }) {
        try await body(node)
    }
}

/// A connected NexClient on `server`, running `body` and closing its connection (awaited) when
/// `body` returns or throws.
func withControlClient<Result>(
    isolation: isolated (any Actor)? = #isolation,
    _ server: NATSServer,
    timeout: Duration = .seconds(3),
    _ body: (NexClient) async throws -> Result
) async throws -> Result {
    let nex = try await controlClient(server, timeout: timeout)
    return try await withTeardown(isolation: isolation, { await nex.connection.close() }) {
        try await body(nex)
    }
}

/// A connected NexClient on `server`; close it with `await nex.connection.close()`, or use
/// ``withControlClient(isolation:_:timeout:_:)``, which does.
func controlClient(_ server: NATSServer, timeout: Duration = .seconds(3)) async throws -> NexClient {
    let client = try NATSClient(options: TestConnection.options(url: server.url))
    try await client.connect()
    return NexClient(connection: client, timeout: timeout)
}
