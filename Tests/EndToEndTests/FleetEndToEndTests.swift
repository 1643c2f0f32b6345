import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// Nodes on a real three-server nats-server cluster (routes, clustered JetStream), driven
/// from clients on other servers of it.
@Suite struct FleetEndToEndTests {
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
