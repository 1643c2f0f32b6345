import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// `$NEX` requests answered by real `nex-node` processes on a real nats-server.
@Suite struct NodeControlEndToEndTests {
    @Test func pingAndInfoDescribeTheNode() async throws {
        try await withNATSServer { server in
            try await withNode(server: server, .init(tags: ["zone": "a", "rack": "r7"])) { node in
                try await withControlClient(server) { nex in

                    let pong = try await nex.ping(node: node.nodeID)
                    #expect(pong.nodeID == node.nodeID)
                    #expect(pong.targetXKey.hasPrefix("X") && pong.targetXKey.count == 56)
                    #expect(!pong.version.isEmpty)
                    #expect(pong.uptime.hasSuffix("s"))
                    #expect(pong.runningMachines == 0)
                    let tags = try #require(pong.tags)
                    #expect(tags["nex.os"] == "linux")
                    #expect(["amd64", "arm64"].contains(tags["nex.arch"] ?? ""))
                    #expect(Int(tags["nex.cpucount"] ?? "") ?? 0 >= 1)
                    #expect(tags["nex.lameduck"] == "false")
                    #expect(tags["zone"] == "a")
                    #expect(tags["rack"] == "r7")

                    let all = try await nex.pingAll(window: .milliseconds(500))
                    #expect(all.map(\.nodeID) == [node.nodeID])

                    let info = try await nex.info(namespace: "default", node: node.nodeID)
                    #expect(info.publicXKey == pong.targetXKey)
                    #expect(info.supportedWorkloadTypes == ["native"])
                    let memory = try #require(info.memory)
                    #expect(memory.total > 0 && memory.available > 0 && memory.available <= memory.total)
                    #expect(info.tags?["zone"] == "a")
                    #expect(info.machines.isEmpty)
                }
            }
        }
    }

    @Test func twoNodesAnswerPingAllAndAuctionsReachOnlyMatchingNodes() async throws {
        try await withNATSServer { server in
            async let first = NodeProcess.start(server: server, tags: ["zone": "a"])
            async let second = NodeProcess.start(server: server, tags: ["zone": "b"])
            let (zoneA, zoneB) = try await (first, second)
            #expect(zoneA.nodeID != zoneB.nodeID)
            try await withControlClient(server) { nex in

                // Windows long enough for two nodes on a loaded 2-core machine (500 ms once missed one).
                let all = try await nex.pingAll(window: .milliseconds(1500))
                #expect(Set(all.map(\.nodeID)) == [zoneA.nodeID, zoneB.nodeID])

                let inZoneA = try await nex.auction(AuctionRequest(tags: ["zone": "a"]), window: .milliseconds(1500))
                #expect(inZoneA.map(\.nodeID) == [zoneA.nodeID])

                let everyone = try await nex.auction(AuctionRequest(os: "linux"), window: .milliseconds(1500))
                #expect(Set(everyone.map(\.nodeID)) == [zoneA.nodeID, zoneB.nodeID])

                // The default workload types are native only.
                let wasm = try await nex.auction(AuctionRequest(workloadTypes: ["wasm"]), window: .milliseconds(1500))
                #expect(wasm.isEmpty)
                let native = try await nex.auction(AuctionRequest(workloadTypes: ["native"]), window: .milliseconds(1500))
                #expect(native.count == 2)
            }
        }
    }

    @Test func lameDuckNodeRefusesDeploysAndSkipsAuctions() async throws {
        try await withNATSServer { server in
            try await withNode(server: server) { node in
                try await withControlClient(server) { nex in
                    let events = try await EventRecorder.start(nex)

                    #expect(try await nex.auction(AuctionRequest(), window: .milliseconds(400)).map(\.nodeID) == [node.nodeID])

                    let response = try await nex.lameDuck(node: node.nodeID)
                    #expect(response.success)
                    #expect(response.nodeID == node.nodeID)

                    let event = try await events.waitFor(NexEventType.nodeEnteredLameDuck, from: node.nodeID)
                    #expect(event.data["id"]?.stringValue == node.nodeID)

                    let pong = try await nex.ping(node: node.nodeID)
                    #expect(pong.tags?["nex.lameduck"] == "true")

                    let deploy = DeployRequest(type: "native", location: "file:///bin/true", workloadJWT: "x.y.z",
                                               environment: "", senderPublicKey: "X", targetNode: node.nodeID)
                    do {
                        _ = try await nex.deploy(namespace: "default", node: node.nodeID, request: deploy)
                        Issue.record("a lame duck node accepted a deploy")
                    } catch let error as NexControlError where error.code == .nodeRefused {
                        #expect(error.subject == "$NEX.DEPLOY.default.\(node.nodeID)")
                        #expect(error.message.contains("lame duck"), "message: \(error.message)")
                    }

                    #expect(try await nex.auction(AuctionRequest(), window: .milliseconds(400)).isEmpty)
                    // A second request is answered too, and the event is not repeated.
                    #expect(try await nex.lameDuck(node: node.nodeID).success)
                    try await Task.sleep(for: .milliseconds(200))
                    #expect(events.all.filter { $0.type == NexEventType.nodeEnteredLameDuck }.count == 1)
                }
            }
        }
    }
}
