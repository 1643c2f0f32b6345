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
}
