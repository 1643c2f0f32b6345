import Foundation
import NATSTestSupport
import NATSWire
import NexAgentBus
import NexAgentBus
import NexControl
import NexWorkloads
import NIOCore
import Synchronization
import Testing

/// A real `nex-agent` process driven by a test NATS client playing the node, on a real
/// nats-server whose users are nkeys (the agent may reach only its own subjects).
/// Starts an ``AgentHarness``, runs `body` with it, and shuts it down (awaited) when `body`
/// returns or throws.
private func withAgentHarness(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (AgentHarness) async throws -> Void
) async throws {
    let agent = try await AgentHarness.start()
    try await withTeardown(isolation: isolation, { await agent.shutdown() }) {
        try await body(agent)
    }
}

private final class AgentHarness: Sendable {
    let server: NATSServer
    let agentID: String
    let agentKey: NKeyPair
    let node: NATSClient
    let directory: TemporaryDirectory
    /// The agent's NEX_AGENT_DIR.
    let agentDirectory: String
    let stderrPath: String
    let process = Mutex<ChildProcess?>(nil)
    let handshakes = HandshakeLog()
    let events: NATSSubscription
    let logs: NATSSubscription
    private let responder: Task<Void, Never>

    private init(server: NATSServer, agentID: String, agentKey: NKeyPair, node: NATSClient, directory: TemporaryDirectory,
                 agentDirectory: String, events: NATSSubscription, logs: NATSSubscription, handshakes: NATSSubscription) {
        self.server = server
        self.agentID = agentID
        self.agentKey = agentKey
        self.node = node
        self.directory = directory
        self.agentDirectory = agentDirectory
        self.stderrPath = directory.appending("agent.stderr")
        self.events = events
        self.logs = logs
        let recorded = self.handshakes
        responder = Task {
            for await message in handshakes {
                if let handshake = try? JSONDecoder().decode(AgentHandshake.self, from: Data(message.payload.readableBytesView)) {
                    recorded.list.withLock { $0.append(handshake) }
                }
                if let reply = message.replyTo { try? await node.publish("{}", to: reply) }
            }
        }
    }

    static func start() async throws -> AgentHarness {
        let agentID = "a\(UInt32.random(in: 0...UInt32.max))"
        let agentKey = try NKeyPair.generate(.user), nodeKey = try NKeyPair.generate(.user)
        let server = try await NATSServer.start(config: """
            authorization {
              users = [
                {nkey: "\(nodeKey.publicKey)"}
                {nkey: "\(agentKey.publicKey)", permissions: {
                  publish: {allow: ["hostint.\(agentID).>"]}
                  subscribe: {allow: ["agentint.\(agentID).>", "_INBOX.\(agentID).>"]}
                  allow_responses: true
                }}
              ]
            }
            """, jetStream: false)
        var options = TestConnection.options(url: server.url)
        options.auth = .nkey(seed: nodeKey.seed)
        options.requestTimeout = .seconds(5)
        let node = try NATSClient(options: options)
        try await node.connect()
        let handshakes = try await node.subscribe(to: "hostint.\(agentID).handshake")
        let events = try await node.subscribe(to: "hostint.\(agentID).events.>")
        let logs = try await node.subscribe(to: "hostint.\(agentID).logs")
        try await node.flush()
        let directory = try TemporaryDirectory(prefix: "nex-e2e-agent-")
        let agentDirectory = try directory.makeSubdirectory("agent")
        chmod(agentDirectory, 0o700)
        return AgentHarness(server: server, agentID: agentID, agentKey: agentKey, node: node, directory: directory,
                            agentDirectory: agentDirectory, events: events, logs: logs, handshakes: handshakes)
    }

    /// The environment the node gives an agent (nothing inherited but `PATH`).
    var agentEnvironment: [String: String] {
        [
            AgentEnvironment.busURL: server.url, AgentEnvironment.agentID: agentID,
            AgentEnvironment.nkeySeed: agentKey.seed, AgentEnvironment.directory: agentDirectory,
            AgentEnvironment.nodePID: String(getpid()), "PATH": "/usr/bin:/bin",
        ]
    }

    /// Starts nex-agent and waits for its handshake.
    @discardableResult
    func launch(environment: [String: String]? = nil, waitForHandshake: Bool = true) async throws -> ChildProcess {
        let child = try ChildProcess(
            executable: try Executables.path("nex-agent"), arguments: [], environment: environment ?? agentEnvironment,
            options: SpawnOptions(stderr: .file(stderrPath)))
        process.withLock { $0 = child }
        if waitForHandshake {
            try await waitFor(timeout: .seconds(10), "agent handshake; stderr: \(stderr)") {
                if !child.isRunning { throw AgentTestFailure("nex-agent exited with \(child.exitStatus ?? 0): \(stderr)") }
                return !handshakes.list.withLock { $0.isEmpty }
            }
        }
        return child
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Writes an executable script into the agent's directory.
    func script(_ body: String, name: String = "workload", mode: mode_t = 0o755) throws -> String {
        let path = agentDirectory + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw AgentTestFailure("cannot write \(path)") }
        let bytes = Array(("#!/bin/sh\n" + body + "\n").utf8)
        _ = Glibc.write(fd, bytes, bytes.count)
        fchmod(fd, mode)
        close(fd)
        return path
    }

    func deployRequest(_ artifact: String, type: WorkloadType = .native, environment: [String: String] = [:],
                       limits: ResourceLimits = ResourceLimits(), logRate: LogRate = .default,
                       grace: Int = 2_000) -> AgentDeployRequest {
        AgentDeployRequest(workloadID: "w-\(agentID)", workloadName: "script", namespace: "default", workloadType: type,
                           argv: ["first"], environment: environment, hash: "00", totalBytes: 1, artifactPath: artifact,
                           limits: limits, logRate: logRate, stopGraceMilliseconds: grace)
    }

    func deploy(_ request: AgentDeployRequest) async throws -> AgentDeployResponse {
        let reply = try await node.request(Array(try JSONEncoder().encode(request)), to: "agentint.\(agentID).deploy")
        return try JSONDecoder().decode(AgentDeployResponse.self, from: Data(reply.payload.readableBytesView))
    }

    func undeploy() async throws -> AgentUndeployResponse {
        let reply = try await node.request([], to: "agentint.\(agentID).undeploy", timeout: .seconds(10))
        return try JSONDecoder().decode(AgentUndeployResponse.self, from: Data(reply.payload.readableBytesView))
    }

    func ping() async throws -> AgentPingResponse {
        let reply = try await node.request([], to: "agentint.\(agentID).ping")
        return try JSONDecoder().decode(AgentPingResponse.self, from: Data(reply.payload.readableBytesView))
    }

    /// The next `count` events as (type, event).
    func nextEvents(_ count: Int) async throws -> [(String, AgentWorkloadEvent)] {
        let events = events
        return try await withTimeLimit(.seconds(10), "\(count) events") {
            var received: [(String, AgentWorkloadEvent)] = []
            for await message in events {
                let type = String(message.subject.split(separator: ".").last ?? "")
                received.append((type, try JSONDecoder().decode(AgentWorkloadEvent.self, from: Data(message.payload.readableBytesView))))
                if received.count == count { break }
            }
            return received
        }
    }

    /// Log lines until all of `expected` have been seen, as (stream, text).
    func logLines(through expected: Set<String>) async throws -> [(String, String)] {
        let logs = logs
        return try await withTimeLimit(.seconds(10), "log lines \(expected.sorted())") {
            var received: [(String, String)] = []
            var missing = expected
            for await message in logs {
                for line in AgentLogBatch.lines(of: message.payload).lines.map({ String(buffer: $0) }) {
                    received.append((message.headers?[AgentLogHeader.stream] ?? "", line))
                    missing.remove(line)
                }
                if missing.isEmpty { break }
            }
            return received
        }
    }

    /// Waits for the agent to exit and returns its status.
    func agentExit(within limit: Duration = .seconds(10)) async throws -> Int32 {
        let child = try #require(process.withLock { $0 })
        return try await withTimeLimit(limit, "nex-agent to exit; stderr: \(stderr)") { try await child.waitForExit() }
    }

    func shutdown() async {
        if let child = process.withLock({ $0 }) { await child.terminate(grace: .zero) }
        responder.cancel()
        await node.close()
    }
}

private final class HandshakeLog: Sendable {
    let list = Mutex<[AgentHandshake]>([])
}

private struct AgentTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}





/// A workload that leaves descendants outside its process group: one `setsid`, one
/// double-forked and `setsid` (a daemon), both ignoring SIGTERM and SIGHUP, each with
/// `marker` in its argv. It prints its working directory, then `up`.
private func escapingWorkload(_ marker: String) -> String {
    """
    setsid sh -c 'trap "" TERM HUP; while :; do sleep 1; done' \(marker)-setsid &
    (setsid sh -c 'trap "" TERM HUP; while :; do sleep 1; done' \(marker)-double &) &
    pwd
    echo up
    while :; do sleep 1; done
    """
}

@Suite(.serialized) struct AgentProcessEndToEndTests {
    /// Attack (defect 11): a workload's descendants leave its process group; STOP must kill
    /// them all the same. Also: the workload starts in its agent's private directory, not in
    /// the node's working directory.
    @Test func descendantsThatLeftTheProcessGroupDieAtStop() async throws {
        try await withAgentHarness { agent in
            try await agent.launch()
            let marker = "nexmarker\(UInt32.random(in: 0...UInt32.max))"
            let accepted = try await agent.deploy(agent.deployRequest(try agent.script(escapingWorkload(marker))))
            #expect(accepted.accepted, "\(accepted.message)")
            let lines = try await agent.logLines(through: ["up"])
            #expect(lines.first?.1 == agent.agentDirectory, "\(lines)")
            #expect(FileManager.default.currentDirectoryPath != agent.agentDirectory)
            try await waitFor(timeout: .seconds(5), "both escaped descendants to run") { processes(withMarker: marker).count == 2 }

            let undeploy = try await agent.undeploy()
            #expect(undeploy.stopped)
            try await waitFor(timeout: .seconds(3), "escaped descendants to die at stop: \(processes(withMarker: marker))") {
                processes(withMarker: marker).isEmpty
            }
            #expect(try await agent.agentExit() == 0)
        }
    }

    /// Attack (defect 11): the node is SIGKILLed while a workload's escaped descendants run;
    /// the agent's parent-death signal makes it kill them all before it exits.
    @Test func descendantsThatLeftTheProcessGroupDieWhenTheNodeIsKilled() async throws {
        try await withAgentHarness { agent in
            // A stand-in node: a shell whose child is the agent, killed with SIGKILL below.
            let node = try ChildProcess(
                executable: "/bin/sh", arguments: ["-c", "NEX_NODE_PID=$$ \"$0\" & wait", try Executables.path("nex-agent")],
                environment: agent.agentEnvironment, options: SpawnOptions(stderr: .file(agent.stderrPath)))
            defer { node.signal(SIGKILL) }
            try await waitFor(timeout: .seconds(10), "agent handshake; stderr: \(agent.stderr)") {
                !agent.handshakes.list.withLock { $0.isEmpty }
            }
            let agentPID = try #require(agent.handshakes.list.withLock { $0.first?.pid })
            let marker = "nexmarker\(UInt32.random(in: 0...UInt32.max))"
            let accepted = try await agent.deploy(agent.deployRequest(try agent.script(escapingWorkload(marker))))
            let workload = try #require(accepted.pid, "\(accepted.message)")
            _ = try await agent.logLines(through: ["up"])
            try await waitFor(timeout: .seconds(5), "both escaped descendants to run") { processes(withMarker: marker).count == 2 }

            kill(node.pid, SIGKILL)
            try await waitFor(timeout: .seconds(3), "escaped descendants to die with the node: \(processes(withMarker: marker))") {
                processes(withMarker: marker).isEmpty
            }
            // (Which of the agent's paths notices first — the parent-death signal or the workload's
            // end — is a race; the outcome is what counts.)
            try await waitFor(timeout: .seconds(3), "the agent and its workload to exit") { !processIsAlive(agentPID) && !processIsAlive(workload) }
        }
    }

    @Test func runsAWorkloadForwardsItsOutputAndExitsWhenItEnds() async throws {
        try await withAgentHarness { agent in
            try await agent.launch()
            let handshake = try #require(agent.handshakes.list.withLock { $0.first })
            #expect(handshake.id == agent.agentID)
            #expect(handshake.pid == agent.process.withLock { $0?.pid })

            let artifact = try agent.script("""
                echo "arg $1"
                env | sort
                echo "to stderr" >&2
                echo done
                exit 3
                """)
            let response = try await agent.deploy(agent.deployRequest(
                artifact, environment: ["GREETING": "hi"], limits: ResourceLimits(openFiles: 64)))
            #expect(response.accepted, "\(response.message)")
            #expect(response.pid != nil)
            #expect(response.limitsApplied == ["rlimit_nofile"])

            let lines = try await agent.logLines(through: ["done", "to stderr"])
            let stdout = lines.filter { $0.0 == "stdout" }.map(\.1)
            #expect(stdout.first == "arg first")
            #expect(stdout.contains("GREETING=hi"))
            #expect(stdout.contains("NEX_WORKLOAD_ID=w-\(agent.agentID)"))
            #expect(!stdout.contains { $0.hasPrefix("NEX_AGENT_") || $0.contains(agent.agentKey.seed) })
            #expect(lines.contains { $0 == ("stderr", "to stderr") })

            let events = try await agent.nextEvents(2)
            #expect(events.map(\.0) == [AgentVerb.workloadDeployed, AgentVerb.workloadUndeployed])
            #expect(events[1].1.code == 3)
            #expect(events[1].1.message == "exited with code 3")
            #expect(try await agent.agentExit() == 0)
        }
    }

    @Test func refusesBadDeploysAndStopsOnUndeploy() async throws {
        try await withAgentHarness { agent in
            try await agent.launch()

            let wasm = try await agent.deploy(agent.deployRequest(agent.agentDirectory + "/x.wasm", type: .wasm))
            #expect(!wasm.accepted)
            #expect(wasm.message.contains("x.wasm"), "\(wasm.message)")

            let outside = try await agent.deploy(agent.deployRequest("/bin/sh"))
            #expect(!outside.accepted)
            #expect(outside.message.contains("outside the agent directory"))

            let missing = try await agent.deploy(agent.deployRequest(agent.agentDirectory + "/missing"))
            #expect(!missing.accepted)
            #expect(missing.message.contains("does not exist"))

            let plain = try agent.script("echo hi", name: "plain", mode: 0o644)
            let notExecutable = try await agent.deploy(agent.deployRequest(plain))
            #expect(!notExecutable.accepted)
            #expect(notExecutable.message.contains("not executable"))

            let artifact = try agent.script("echo up\nwhile :; do sleep 1; done")
            let accepted = try await agent.deploy(agent.deployRequest(artifact))
            #expect(accepted.accepted, "\(accepted.message)")
            let second = try await agent.deploy(agent.deployRequest(artifact))
            #expect(!second.accepted)
            #expect(second.message.contains("already runs workload"))
            _ = try await agent.logLines(through: ["up"])

            let ping = try await agent.ping()
            #expect(ping == AgentPingResponse(id: agent.agentID, workloadID: "w-\(agent.agentID)", running: true))

            let undeploy = try await agent.undeploy()
            #expect(undeploy.stopped)
            #expect(undeploy.exitCode == -SIGTERM)
            #expect(undeploy.message == "killed by signal 15")
            let events = try await agent.nextEvents(2)
            #expect(events.map(\.0) == [AgentVerb.workloadDeployed, AgentVerb.workloadUndeployed])
            #expect(try await agent.agentExit() == 0)
            if let pid = accepted.pid { #expect(!processIsAlive(pid)) }
        }
    }

    @Test func sigtermStopsTheWorkloadGracefully() async throws {
        try await withAgentHarness { agent in
            let child = try await agent.launch()
            let artifact = try agent.script("trap 'echo bye; exit 0' TERM\necho up\nwhile :; do sleep 0.1; done")
            let accepted = try await agent.deploy(agent.deployRequest(artifact))
            #expect(accepted.accepted, "\(accepted.message)")
            _ = try await agent.logLines(through: ["up"])
            kill(child.pid, SIGTERM)
            let events = try await agent.nextEvents(2)
            #expect(events[1].0 == AgentVerb.workloadUndeployed)
            #expect(events[1].1.code == 0)
            #expect(try await agent.agentExit() == 0)
            if let pid = accepted.pid { #expect(!processIsAlive(pid)) }
        }
    }

    @Test func theWorkloadDiesWithItsAgent() async throws {
        try await withAgentHarness { agent in
            let child = try await agent.launch()
            let artifact = try agent.script("trap '' TERM\necho up\nwhile :; do sleep 0.1; done")
            let accepted = try await agent.deploy(agent.deployRequest(artifact))
            let pid = try #require(accepted.pid, "\(accepted.message)")
            _ = try await agent.logLines(through: ["up"])
            kill(child.pid, SIGKILL)
            try await waitFor(timeout: .seconds(2), "workload \(pid) to die with its agent") { !processIsAlive(pid) }
        }
    }

    /// Volume, not speed: every line reaches the node, the last one last. (Lines per second is a
    /// figure of Benchmarks/workload-bench, `log_lines_per_s`.)
    @Test func everyLineOfAFloodOfOutputReachesTheNode() async throws {
        try await withAgentHarness { agent in
            try await agent.launch()
            let count = 100_000
            let artifact = try agent.script("exec seq 1 \(count)")
            // Above the rate limit: this measures the path, not the limit.
            let accepted = try await agent.deploy(agent.deployRequest(
                artifact, logRate: LogRate(linesPerSecond: 10_000_000, bytesPerSecond: 1 << 30)))
            #expect(accepted.accepted, "\(accepted.message)")
            let logs = agent.logs
            let received = try await withTimeLimit(.seconds(60), "\(count) log lines") { () -> (Int, String) in
                var received = 0
                var last = ""
                for await message in logs {
                    let lines = AgentLogBatch.lines(of: message.payload).lines
                    received += lines.count
                    if received >= count {
                        last = lines.last.map { String(buffer: $0) } ?? ""
                        break
                    }
                }
                return (received, last)
            }
            #expect(received == (count, String(count)))
            #expect(try await agent.agentExit() == 0)
        }
    }

    @Test func aWorkloadPrintingFlatOutIsRateLimitedAndTheDropsAreCounted() async throws {
        try await withAgentHarness { agent in
            try await agent.launch()
            // Long lines as fast as the shell can print them, for 3 seconds.
            let artifact = try agent.script("""
                line=$(head -c 2000 /dev/zero | tr '\\0' x)
                end=$(( $(date +%s) + 3 ))
                while [ $(date +%s) -lt $end ]; do echo "$line"; echo "$line"; echo "$line"; echo "$line"; done
                sleep 1
                echo done
                sleep 1
                """)
            let rate = 200
            let started = ContinuousClock.now
            let accepted = try await agent.deploy(agent.deployRequest(
                artifact, logRate: LogRate(linesPerSecond: rate, bytesPerSecond: 1 << 30)))
            #expect(accepted.accepted, "\(accepted.message)")
            let logs = agent.logs
            // In the middle of the flood, the agent still answers its node.
            try await Task.sleep(for: .seconds(1))
            #expect(try await agent.ping().running)
            let (lines, dropped) = try await withTimeLimit(.seconds(20), "the workload's end") { () -> (Int, Int) in
                var lines = 0, dropped = 0
                for await message in logs {
                    if let total = message.headers?[AgentLogHeader.droppedLines].flatMap({ Int($0) }) {
                        dropped = total
                        #expect(message.string.contains("output lines dropped"), "\(message.string)")
                    } else {
                        let batch = AgentLogBatch.lines(of: message.payload).lines.map { String(buffer: $0) }
                        lines += batch.count
                        if batch.last == "done" { break }
                    }
                }
                return (lines, dropped)
            }
            let elapsed = Double(started.duration(to: .now).components.seconds) + 1
            // The burst (two seconds' worth) plus the rate over the run, and nothing near what was printed.
            #expect(lines <= rate * 2 + Int(Double(rate) * elapsed) + 10, "\(lines) lines in \(elapsed) s")
            #expect(dropped > lines, "dropped \(dropped), forwarded \(lines)")
            print("nex-agent: a flat-out printer forwarded \(lines) lines and dropped \(dropped) in \(elapsed) s at \(rate) lines/s")
        }
    }

    @Test func missingEnvironmentIsNamed() async throws {
        try await withAgentHarness { agent in
            var environment = agent.agentEnvironment
            environment.removeValue(forKey: AgentEnvironment.nkeySeed)
            try await agent.launch(environment: environment, waitForHandshake: false)
            #expect(try await agent.agentExit() == 2)
            #expect(agent.stderr.contains(AgentEnvironment.nkeySeed))
        }
    }

    @Test func exitsWhenItsParentIsNotTheNode() async throws {
        try await withAgentHarness { agent in
            var environment = agent.agentEnvironment
            environment[AgentEnvironment.nodePID] = "1"
            try await agent.launch(environment: environment, waitForHandshake: false)
            #expect(try await agent.agentExit() == 1)
            #expect(agent.stderr.contains("not the node"))
            #expect(agent.handshakes.list.withLock { $0.isEmpty })
        }
    }
}
