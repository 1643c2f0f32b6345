import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// Nodes on a real three-server nats-server cluster (routes, clustered JetStream), driven
/// from clients on other servers of it.
@Suite struct FleetEndToEndTests {
    /// A node restarted with the same identity brings back the workloads it ran (same ids, same
    /// sealed environment, from its state bucket on the cluster); a stopped one stays stopped.
    /// Killed (SIGKILL) rather than stopped, it brings them back too.
    @Test func aRestartedNodeBringsBackItsWorkloads() async throws {
        try await withNATSCluster(size: 3) { cluster in
            let state = try TemporaryDirectory(prefix: "nex-e2e-restart-")
            let launch = NodeProcess.Launch(config: #"{"state_replicas": 3}"#, stateDirectory: state.appending("state"))
            try await withControlClient(cluster.servers[2]) { nex in
                let logs = try await LogRecorder.start(nex)
                let events = try await EventRecorder.start(nex, namespace: "default")
                let fixture = try WorkloadFixture()
                let first = try await NodeProcess.start(server: cluster.servers[0], launch)
                let kept = try await fixture.deploy(nex, node: first.nodeID, name: "kept", environment: ["GREETING": "still here"])
                let dropped = try await fixture.deploy(nex, node: first.nodeID, name: "dropped")
                _ = try await fixture.stop(nex, node: first.nodeID, id: dropped.id, name: "dropped")
                first.terminate()
                #expect(try await first.waitForExit() == 0)

                let second = try await NodeProcess.start(server: cluster.servers[1], launch)
                #expect(second.nodeID == first.nodeID)
                try await waitFor(timeout: .seconds(10), "kept comes back: \(second.log.split(separator: "\n").filter { !$0.contains("nex-agent") }.joined(separator: "\n"))") {
                    (try? await nex.info(namespace: "default", node: second.nodeID).machines.map(\.id)) == [kept.id]
                }
                try await waitFor(timeout: .seconds(10), "with its environment") {
                    logs.all.filter { $0.id == kept.id && $0.text.contains("greeting=still here") }.count >= 2
                }
                let restored = try await events.waitFor(NexEventType.workloadRestored, timeout: .seconds(10))
                #expect(restored.source == "\(second.nodeID)-\(kept.id)", "\(events.summary)")
                #expect(!events.all.contains { $0.type == "workload_restored" && $0.source.hasSuffix(dropped.id) })
                second.kill()
                _ = try await second.waitForExit()

                let third = try await NodeProcess.start(server: cluster.servers[2], launch)
                try await waitFor(timeout: .seconds(10), "kept comes back after a kill too") {
                    (try? await nex.info(namespace: "default", node: third.nodeID).machines.map(\.id)) == [kept.id]
                }
                await third.stop()
            }
        }
    }

    /// Nodes on two servers of the cluster, listed from a third: `nexctl node ls --filter`
    /// keeps those whose tags match; PING reports each node's nexus.
    @Test func nodesOnTwoServersAreListedAndFilteredFromAThird() async throws {
        try await withNATSCluster(size: 3) { cluster in
            let east = NodeProcess.Launch(tags: ["zone": "a"], config: #"{"nexus": "east"}"#)
            try await withNode(server: cluster.servers[0], east) { first in
                try await withNode(server: cluster.servers[1], .init(tags: ["zone": "b"])) { second in
                    let nexctl = try Executables.nexctl
                    let all = try await runCommand(nexctl, ["node", "ls", "--json", "-s", cluster.servers[2].url, "--timeout", "2"])
                    #expect(all.status == 0, "\(all.stderr)")
                    let nodes = try JSONDecoder().decode([PingResponse].self, from: Data(all.stdout.utf8))
                    #expect(Set(nodes.map(\.nodeID)) == [first.nodeID, second.nodeID])
                    #expect(nodes.first { $0.nodeID == first.nodeID }?.nexus == "east")
                    #expect(nodes.first { $0.nodeID == first.nodeID }?.tags?["nex.nexus"] == "east")
                    #expect(nodes.first { $0.nodeID == second.nodeID }?.nexus == nil)

                    let filtered = try await runCommand(
                        nexctl, ["node", "ls", "--filter", "zone=A", "-s", cluster.servers[2].url, "--timeout", "2"])
                    #expect(filtered.status == 0, "\(filtered.stderr)")
                    #expect(filtered.stdout.contains(first.nodeID) && !filtered.stdout.contains(second.nodeID), "\(filtered.stdout)")
                    let bad = try await runCommand(nexctl, ["node", "ls", "--filter", "zone", "-s", cluster.servers[2].url])
                    #expect(bad.status != 0 && bad.stderr.contains("--filter zone"), "\(bad.stderr)")
                }
            }
        }
    }

    /// The server a node is attached to is killed (SIGKILL): the node moves to another server
    /// within seconds, its workload keeps running (same id, no restart, not deployed twice),
    /// its logs go on, and it is still driven from a client on a third server.
    @Test func aNodeWhoseServerDiesMovesToAnotherAndKeepsItsWorkload() async throws {
        try await withNATSCluster(size: 3) { cluster in
            let (control, attached, watcher) = (cluster.servers[0], cluster.servers[1], cluster.servers[2])
            try await withNode(server: attached) { node in
                try await withControlClient(control) { nex in
                    try await withControlClient(watcher) { watch in
                        let logs = try await LogRecorder.start(watch)
                        let events = try await EventRecorder.start(watch, namespace: "default")
                        let fixture = try WorkloadFixture()
                        let run = try await fixture.deploy(nex, node: node.nodeID, name: "survivor")
                        try await logs.waitFor("tick 2")

                        kill(try #require(attached.pid), SIGKILL)
                        let ticksAtKill = logs.texts.filter { $0.hasPrefix("tick ") }.count
                        let moved = ContinuousClock.now
                        try await waitFor(timeout: .seconds(10), "the node answers through the cluster again") {
                            (try? await nex.ping(node: node.nodeID)) != nil
                        }
                        let took = moved.duration(to: .now)
                        #expect(took < .seconds(10), "moved in \(took)")
                        try await waitFor(timeout: .seconds(10), "its workload's logs go on") {
                            logs.all.filter { $0.id == run.id && $0.text.hasPrefix("tick ") }.count > ticksAtKill + 5
                        }
                        let info = try await nex.info(namespace: "default", node: node.nodeID)
                        #expect(info.machines.map(\.id) == [run.id], "the same workload, once: \(info.machines)")
                        #expect(info.machines.first?.restarts == 0)
                        #expect(events.all.filter { $0.type == "workload_deployed" }.count == 1, "\(events.summary)")
                        #expect(node.isRunning)
                        // And it takes new work through the cluster.
                        let late = try await fixture.deploy(nex, node: node.nodeID, name: "after-the-loss")
                        #expect(late.started)
                    }
                }
            }
        }
    }

    /// `nexctl devrun --replicas 3` puts a function on three distinct nodes of the cluster
    /// (fewest workloads first); `nexctl workload ls` from another server lists the three
    /// copies in one table; the copies share their trigger's load through its queue group, each
    /// message run once; `--replicas 4` is refused naming how many nodes bid.
    @Test func replicasLandOnDistinctNodesAndShareTheirTrigger() async throws {
        let config = #"{"workload_types": ["native", "javascript"]}"#
        try await withNATSCluster(size: 3) { cluster in
            try await withNode(server: cluster.servers[0], .init(config: config)) { a in
                try await withNode(server: cluster.servers[1], .init(config: config)) { b in
                    try await withNode(server: cluster.servers[2], .init(config: config)) { c in
                        try await withControlClient(cluster.servers[1], timeout: .seconds(5)) { nex in
                            let events = try await EventRecorder.start(nex, namespace: "default")
                            let home = try TemporaryDirectory(prefix: "nexctl-home-")
                            let environment = ChildEnvironment.base().merging(["NEX_HOME": home.appending("nex")]) { $1 }
                            let directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-replicas-")
                            let script = try FunctionEndToEndTests.example("echo.js", in: directory)
                            let nexctl = try Executables.nexctl
                            let devrun = try await runCommand(
                                nexctl, ["devrun", script, "--type", "javascript", "--trigger", "fn.rep.>", "--replicas", "3",
                                         "--name", "rep", "-s", cluster.servers[0].url, "--timeout", "5", "--auction-wait", "1.5"],
                                environment: environment, timeout: .seconds(60))
                            #expect(devrun.status == 0, "\(devrun.stderr)")
                            let nodes = devrun.stdout.split(separator: "\n").filter { $0.hasPrefix("node: ") }.map { String($0.dropFirst(6)) }
                            #expect(Set(nodes) == [a.nodeID, b.nodeID, c.nodeID], "\(devrun.stdout)")

                            let listed = try await runCommand(
                                nexctl, ["workload", "ls", "--json", "-s", cluster.servers[2].url, "--timeout", "2"])
                            #expect(listed.status == 0, "\(listed.stderr)")
                            let workloads = try JSONDecoder().decode([RunningWorkload].self, from: Data(listed.stdout.utf8))
                            #expect(Set(workloads.map(\.nodeID)) == [a.nodeID, b.nodeID, c.nodeID])
                            #expect(workloads.allSatisfy { $0.name == "rep" && $0.type == "javascript" && $0.state == "running" && $0.uptime != nil && $0.restarts == 0 },
                                    "\(listed.stdout)")
                            let table = try await runCommand(nexctl, ["workload", "ls", "-s", cluster.servers[2].url])
                            #expect(table.stdout.contains("NODE") && table.stdout.contains("STATE") && table.stdout.contains("3 workloads on 3 nodes"),
                                    "\(table.stdout)")

                            for index in 0..<30 {
                                let reply = try await nex.connection.request("m\(index)", to: "fn.rep.x", timeout: .seconds(10))
                                #expect(String(buffer: reply.payload).contains("m\(index)"))
                            }
                            try await waitFor(timeout: .seconds(5), "30 runs: \(events.summary)") {
                                events.all.filter { $0.type == "function_exec_succeeded" }.count >= 30
                            }
                            let runs = events.all.filter { $0.type == "function_exec_succeeded" }
                            #expect(runs.count == 30, "each message runs once")
                            let runners = Set(runs.map { $0.source.split(separator: "-").first.map(String.init) ?? "" })
                            #expect(runners.count >= 2, "the queue group spreads the load: \(runners)")

                            let tooMany = try await runCommand(
                                nexctl, ["devrun", script, "--type", "javascript", "--trigger", "fn.rep.>", "--replicas", "4",
                                         "--no-stop", "-s", cluster.servers[0].url, "--auction-wait", "1"],
                                environment: environment, timeout: .seconds(30))
                            #expect(tooMany.status != 0 && tooMany.stderr.contains("only 3 nodes bid for a javascript workload, and 4 are needed"),
                                    "\(tooMany.stderr)")
                        }
                    }
                }
            }
        }
    }

    /// A node on a leaf node server (an edge site; no JetStream there, `default_js_domain` to
    /// the cluster's) beside a node on the cluster: both are listed from a client on the leaf
    /// and on the cluster; `devrun --replicas 2` from the cluster uploads to the cluster's
    /// object store and both nodes fetch it; the edge node, restarted, brings its workload back
    /// from the state bucket it reaches across the leaf.
    @Test func aNodeOnALeafIsDrivenFromTheClusterAndKeepsItsState() async throws {
        try await withNATSCluster(size: 3, jetStreamDomain: "hub") { cluster in
            let leaf = try await cluster.startLeaf(attachedTo: cluster.servers[0])
            defer { leaf.stop() }
            let state = try TemporaryDirectory(prefix: "nex-e2e-leaf-")
            let edgeLaunch = NodeProcess.Launch(tags: ["site": "edge"], config: #"{"state_replicas": 3}"#,
                                                stateDirectory: state.appending("state"))
            try await withNode(server: cluster.servers[1], .init(tags: ["site": "core"])) { core in
                let edge = try await NodeProcess.start(server: leaf, edgeLaunch)
                defer { edge.kill() }
                let nexctl = try Executables.nexctl
                for server in [leaf, cluster.servers[2]] {
                    let listed = try await runCommand(nexctl, ["node", "ls", "--json", "-s", server.url, "--timeout", "2"])
                    let nodes = try JSONDecoder().decode([PingResponse].self, from: Data(listed.stdout.utf8))
                    #expect(Set(nodes.map(\.nodeID)) == [core.nodeID, edge.nodeID], "from \(server.url): \(listed.stderr)")
                }
                let home = try TemporaryDirectory(prefix: "nexctl-home-")
                let environment = ChildEnvironment.base().merging(["NEX_HOME": home.appending("nex")]) { $1 }
                let fixture = try WorkloadFixture()
                let devrun = try await runCommand(
                    nexctl, ["devrun", fixture.path, "GREETING=edge", "--replicas", "2", "--name", "site-app",
                             "-s", cluster.servers[2].url, "--timeout", "5", "--auction-wait", "1.5"],
                    environment: environment, timeout: .seconds(60))
                #expect(devrun.status == 0, "\(devrun.stderr)")
                try await withControlClient(cluster.servers[2]) { nex in
                    let running = try await waitForValue(timeout: .seconds(10), "both nodes run it") {
                        let found = try? await nex.runningWorkloads(namespace: "default", matching: "site-app", window: .milliseconds(500))
                        return Set(found?.map(\.nodeID) ?? []) == [core.nodeID, edge.nodeID] ? found : nil
                    }
                    let onEdge = try #require(running.first { $0.nodeID == edge.nodeID })
                    edge.terminate()
                    #expect(try await edge.waitForExit() == 0)
                    let again = try await NodeProcess.start(server: leaf, edgeLaunch)
                    defer { again.kill() }
                    try await waitFor(timeout: .seconds(15), "the edge node brings its workload back: \(again.log.suffix(2000))") {
                        (try? await nex.runningWorkloads(namespace: "default", matching: onEdge.id, node: again.nodeID,
                                                         window: .milliseconds(500)).map(\.id)) == [onEdge.id]
                    }
                }
            }
        }
    }
}
