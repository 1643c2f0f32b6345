import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// Real nats-server, real nex-node and nex-agent processes, real native workloads.
@Suite(.serialized) struct WorkloadEndToEndTests {
    @Test func deployStreamsLogsReportsAndStops() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server) { node in
                try await withControlClient(server) { nex in
                    let events = try await EventRecorder.start(nex, namespace: "default")
                    let logs = try await LogRecorder.start(nex)
                    let fixture = try WorkloadFixture()

                    let run = try await fixture.deploy(nex, node: node.nodeID, name: "echo-svc",
                                                       environment: ["GREETING": "hi there"])
                    #expect(run.started && run.name == "echo-svc" && run.issuer == fixture.issuer.publicKey)
                    let deployed = try await events.waitFor("workload_deployed")
                    #expect(deployed.source == "\(node.nodeID)-\(run.id)")

                    let hello = try await logs.waitFor("hello ")
                    #expect(hello.text == "hello echo-svc id=\(run.id) ns=default greeting=hi there seed=none")
                    #expect(hello.id == run.id && hello.level == 4)
                    let stderrLine = try await logs.waitFor("to stderr")
                    #expect(stderrLine.level == 2)
                    let processes = try #require(pids(of: try await logs.waitFor("pid=")))
                    #expect(processIsAlive(processes.pid))
                    try await logs.waitFor("tick 2")

                    let info = try await nex.info(namespace: "default", node: node.nodeID)
                    let machine = try #require(info.machines.first { $0.id == run.id })
                    #expect(machine.workload.name == "echo-svc" && machine.workload.type == "native")
                    #expect(machine.workload.hash == (try fixture.hash))
                    #expect(machine.state == "running" && machine.restarts == 0)
                    #expect(try await nex.info(namespace: "other", node: node.nodeID).machines.isEmpty)
                    #expect(try await nex.ping(node: node.nodeID).runningMachines == 1)
                    let ping = try await nex.ping(node: node.nodeID)
                    #expect(ping.tags?["nex.unsafe"] == nil && ping.sandboxed == true)
                    let byName = try await nex.runningWorkloads(namespace: "default", matching: "echo-svc")
                    let byID = try await nex.runningWorkloads(namespace: "default", matching: run.id)
                    #expect(byName.map(\.id) == [run.id] && byID.map(\.id) == [run.id])

                    let stopped = try await fixture.stop(nex, node: node.nodeID, id: run.id, name: "echo-svc")
                    #expect(stopped.stopped && stopped.id == run.id)
                    try await waitFor("the workload process to end") { !processIsAlive(processes.pid) }
                    try await logs.waitFor("got TERM")  // SIGTERM first
                    try await events.waitFor("workload_undeployed")
                    #expect(try await nex.info(namespace: "default", node: node.nodeID).machines.isEmpty)
                    #expect(try await nex.ping(node: node.nodeID).runningMachines == 0)
                }
            }
        }
    }

    @Test func nexctlDevrunsLogsProbesInvokesAndStopsOnARealNode() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server) { node in
                let home = try TemporaryDirectory(prefix: "nexctl-home-")
                let environment = ChildEnvironment.base().merging(["NEX_HOME": home.appending("nex")]) { $1 }
                let nexctl = try Executables.nexctl
                let fixture = try WorkloadFixture()

                let devrun = try await runCommand(
                    nexctl, ["devrun", fixture.path, "GREETING=from-nexctl", "--name", "cli-svc", "-s", server.url,
                             "--timeout", "5", "--auction-wait", "2"], environment: environment, timeout: .seconds(30))
                #expect(devrun.status == 0, "\(devrun.stderr)")
                #expect(devrun.stdout.contains("node: \(node.nodeID)"), "\(devrun.stdout)")
                let id = try #require(devrun.stdout.split(separator: "\n").first { $0.hasPrefix("workload: ") }?
                    .split(separator: " ").dropFirst().first.map(String.init), "\(devrun.stdout)")

                // The logs stream carries the workload's first line (published again by ticks meanwhile).
                let logs = try await runCommand(nexctl, ["logs", "--id", id, "-s", server.url, "--timeout", "2"],
                                                environment: environment)
                #expect(logs.status == 0, "\(logs.stderr)")
                #expect(logs.stdout.contains("cli-svc: tick"), "\(logs.stdout)")

                let probe = try await runCommand(nexctl, ["node", "probe", "--workload", "cli-svc", "-s", server.url,
                                                          "--timeout", "2"], environment: environment)
                #expect(probe.stdout.contains(id), "\(probe.stdout)")

                let stop = try await runCommand(nexctl, ["stop", node.nodeID, id, "--name", "cli-svc", "-s", server.url,
                                                         "--timeout", "15"], environment: environment, timeout: .seconds(30))
                #expect(stop.status == 0, "\(stop.stderr)")
                try await withControlClient(server) { nex in
                    #expect(try await nex.info(namespace: "default", node: node.nodeID).machines.isEmpty)

                    // invoke: a request to any subject, the reply printed (here: a responder of the test).
                    let responder = try await nex.connection.subscribe(to: "svc.echo")
                    try await nex.connection.flush()
                    let answering = Task {
                        for await message in responder {
                            if let reply = message.replyTo { try await nex.connection.publish("echo: \(message.string)", to: reply) }
                        }
                    }
                    defer { answering.cancel() }
                    let invoke = try await runCommand(nexctl, ["invoke", "svc.echo", "ping", "-s", server.url, "--timeout", "5"],
                                                      environment: environment)
                    #expect(invoke.status == 0 && invoke.stdout == "echo: ping\n", "\(invoke.stdout) \(invoke.stderr)")
                    let nobody = try await runCommand(nexctl, ["invoke", "svc.nobody", "-s", server.url, "--timeout", "2"],
                                                      environment: environment)
                    #expect(nobody.status == 1 && nobody.stderr.contains("svc.nobody"), "\(nobody.stderr)")
                }
            }
        }
    }

    @Test func resourceLimitsAreAppliedAndReported() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: #"{"workload_limits": {"open_files": 64}}"#)) { node in
                try await withControlClient(server) { nex in
                    let logs = try await LogRecorder.start(nex)
                    let fixture = try WorkloadFixture(script: """
                        #!/bin/sh
                        echo "nofile=$(ulimit -n)"
                        grep -c nex- /proc/self/cgroup | sed 's/^/cgroups=/'
                        exec sleep 60
                        """)
                    let run = try await fixture.deploy(nex, node: node.nodeID, name: "limited",
                                                       limits: ResourceLimits(memoryBytes: 512 * 1024 * 1024, processes: 4096))
                    // The node's default (open_files) and the deploy's own limits, together.
                    #expect(try await logs.waitFor("nofile=").text == "nofile=64")
                    let machine = try #require(try await nex.info(namespace: "default", node: node.nodeID).machines.first { $0.id == run.id })
                    let applied = Set(machine.limitsApplied ?? [])
                    // Memory and processes by cgroup where the host allows one, else by rlimit.
                    #expect(applied.contains("rlimit_nofile"), "\(applied)")
                    #expect(applied.contains("cgroup_memory") != applied.contains("rlimit_as"), "\(applied)")
                    #expect(applied.contains("cgroup_pids") != applied.contains("rlimit_nproc"), "\(applied)")
                    let cgroupLine = try await logs.waitFor("cgroups=").text
                    if applied.contains("cgroup_memory") || applied.contains("cgroup_pids") {
                        #expect(cgroupLine != "cgroups=0", "the workload runs in its cgroup: \(cgroupLine)")
                    } else {
                        #expect(cgroupLine == "cgroups=0")
                    }
                    _ = try await fixture.stop(nex, node: node.nodeID, id: run.id, name: "limited")
                }
            }
        }
    }

    @Test func aSecondDeployOfTheSameArtifactComesFromTheCache() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server) { node in
                try await withControlClient(server) { nex in
                    let fixture = try WorkloadFixture()
                    let hash = try fixture.hash
                    let first = try await fixture.deploy(nex, node: node.nodeID, name: "one")
                    // The source is gone: only the node's cache can provide it now.
                    try FileManager.default.removeItem(atPath: fixture.path)
                    let second = try await nex.deploy(try fixture.submission(name: "two", hash: hash), namespace: "default",
                                                      node: node.nodeID, issuer: fixture.issuer, sender: fixture.sender)
                    #expect(first.started && second.started && first.id != second.id)
                    let cached = try FileManager.default.contentsOfDirectory(atPath: node.stateDirectory + "/artifacts")
                    #expect(cached.contains(hash), "\(cached)")
                }
            }
        }
    }

    @Test func sigtermStopsWorkloadsGracefully() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server) { node in
                try await withControlClient(server) { nex in
                    let logs = try await LogRecorder.start(nex)
                    // On SIGTERM it becomes a process the host can see by name (a sandboxed
                    // workload cannot leave a file behind), then exits.
                    let marker = "nexterm\(UInt32.random(in: 0...UInt32.max))"
                    let fixture = try WorkloadFixture(script: """
                        #!/bin/sh
                        echo "pid=$$ ppid=$PPID"
                        trap 'exec sh -c "sleep 1" \(marker)' TERM
                        while true; do sleep 0.1; done
                        """)
                    _ = try await fixture.deploy(nex, node: node.nodeID, name: "graceful")
                    let workload = try #require(pids(of: try await logs.waitFor("pid=")))

                    node.terminate()
                    try await waitFor(timeout: .seconds(5), "SIGTERM reached the workload") {
                        !processes(withMarker: marker).isEmpty
                    }
                    #expect(try await node.waitForExit() == 0)
                    #expect(!processIsAlive(workload.pid) && !processIsAlive(workload.ppid))
                }
            }
        }
    }

    @Test func killingTheNodeLeavesNoAgentOrWorkloadBehind() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: #"{"machine_pool_size": 3}"#)) { node in
                try await withControlClient(server) { nex in
                    let logs = try await LogRecorder.start(nex)
                    let fixture = try WorkloadFixture()
                    _ = try await fixture.deploy(nex, node: node.nodeID, name: "orphan-check")
                    let processes = try #require(pids(of: try await logs.waitFor("pid=")))
                    let agents = try childPIDs(of: node.pid)
                    #expect(agents.count >= 3, "a warm pool of agents besides the busy one: \(agents)")
                    #expect(agents.contains(processes.ppid))

                    node.kill()
                    let deadline = ContinuousClock.now + .seconds(2)
                    while ContinuousClock.now < deadline, ([processes.pid] + agents).contains(where: processIsAlive) {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    #expect(!processIsAlive(processes.pid), "workload survived its node")
                    for agent in agents { #expect(!processIsAlive(agent), "agent \(agent) survived its node") }
                }
            }
        }
    }

    @Test func anEssentialServiceIsRestartedAndAPlainOneIsNot() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server) { node in
                try await withControlClient(server) { nex in
                    let events = try await EventRecorder.start(nex, namespace: "default")
                    let logs = try await LogRecorder.start(nex)

                    // Exits 3 right away: restarted after 1 s, then 2 s...
                    let failing = try WorkloadFixture(script: "#!/bin/sh\necho \"failing run\"\nsleep 0.2\nexit 3\n")
                    let essential = try await failing.deploy(nex, node: node.nodeID, name: "flaky", essential: true)
                    let restarted = try await events.waitFor("workload_restarted", timeout: .seconds(10))
                    #expect(restarted.source == "\(node.nodeID)-\(essential.id)")
                    try await waitFor(timeout: .seconds(10), "a second run") { logs.texts.filter { $0 == "failing run" }.count >= 2 }
                    let info = try await nex.info(namespace: "default", node: node.nodeID)
                    let machine = try #require(info.machines.first { $0.id == essential.id })
                    #expect((machine.restarts ?? 0) >= 1)

                    // A plain service whose agent is killed: reported, not restarted.
                    let plain = try WorkloadFixture()
                    let run = try await plain.deploy(nex, node: node.nodeID, name: "plain")
                    let line = try await waitForValue("pid line of plain") {
                        logs.all.first { $0.id == run.id && $0.text.hasPrefix("pid=") }
                    }
                    let processes = try #require(pids(of: line))
                    kill(processes.ppid, SIGKILL)
                    let undeployed = try await waitForValue(timeout: .seconds(5), "workload_undeployed for plain: \(events.summary)") {
                        events.all.first { $0.type == "workload_undeployed" && $0.source.hasSuffix(run.id) }
                    }
                    #expect("\(undeployed.data)".contains("signal 9"), "\(undeployed.data)")
                    try await waitFor("plain's process gone") { !processIsAlive(processes.pid) }
                    try await waitFor("plain no longer listed") {
                        try await !nex.info(namespace: "default", node: node.nodeID).machines.contains { $0.id == run.id }
                    }
                    #expect(!events.all.contains { $0.type == "workload_restarted" && $0.source.hasSuffix(run.id) })
                    #expect(try await nex.ping(node: node.nodeID).nodeID == node.nodeID)
                }
            }
        }
    }
}

/// Direct children of `pid`, from /proc.
func childPIDs(of pid: Int32) throws -> [Int32] {
    try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { entry -> Int32? in
        guard let child = Int32(entry),
              let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        return fields.count > 1 && Int32(fields[1]) == pid ? child : nil
    }
}
