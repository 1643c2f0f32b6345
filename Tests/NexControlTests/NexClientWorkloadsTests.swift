import Foundation
import NATSTestSupport
import NATSWire
import Testing
@testable import NexControl

/// ``NexClient``'s workload helpers against ``ControlServer`` on a real nats-server.
@Suite struct NexClientWorkloadsTests {
    @Test func deployLearnsTheXKeySignsAndSeals() async throws {
        let node = try CannedNode()
        let issuer = try NKeyPair.generate(.account)
        let sender = try XKeyPair.generate()
        let hash = ArtifactDigest.sha256Hex(Array("artifact".utf8))
        let submission = try WorkloadSubmission(
            name: "echo", location: .objectStore(bucket: "NEXCLIFILES", key: "echo"), artifactHash: hash,
            environment: ["GREETING": "hello"])
        try await withControlServers([node]) { nex, _ in
            let run = try await nex.deploy(submission, namespace: "default", node: node.nodeID, issuer: issuer, sender: sender)
            #expect(run == RunResponse(started: true, id: "w-echo", issuer: issuer.publicKey, name: "echo"))
            #expect(node.state.withLock { $0.environments["w-echo"] } == ["GREETING": "hello"])
            #expect(node.state.withLock { $0.deployments["w-echo"]?.artifactHash } == hash)

            let stopped = try await nex.stopWorkload(namespace: "default", node: node.nodeID, id: "w-echo", name: "echo",
                                                     issuer: issuer)
            #expect(stopped.stopped)
        }
    }

    @Test func refusedDeployCarriesTheNodesMessage() async throws {
        let node = try CannedNode(refusal: "node is in lame duck mode")
        let submission = try WorkloadSubmission(name: "echo", location: .file(path: "/opt/echo"),
                                                artifactHash: String(repeating: "0", count: 64))
        try await withControlServers([node]) { nex, _ in
            let message = try await nodeRefusal {
                try await nex.deploy(submission, namespace: "default", node: node.nodeID,
                                     issuer: NKeyPair.generate(.account), sender: XKeyPair.generate())
            }
            #expect(message == "node is in lame duck mode")
        }
    }

    @Test func runningWorkloadsByIdNameAndNode() async throws {
        let first = try CannedNode(workloads: [.init(id: "w1", namespace: "default", name: "echo", type: "native"),
                                               .init(id: "w2", namespace: "default", name: "web", type: "wasm")])
        let second = try CannedNode(workloads: [.init(id: "w3", namespace: "default", name: "echo", type: "native")])
        try await withControlServers([first, second]) { nex, _ in
            let all = try await nex.runningWorkloads(namespace: "default", window: .seconds(2))
            #expect(Set(all.map(\.id)) == ["w1", "w2", "w3"])
            let echoes = try await nex.runningWorkloads(namespace: "default", matching: "echo", window: .seconds(2))
            #expect(Set(echoes.map(\.nodeID)) == [first.nodeID, second.nodeID])
            let onSecond = try await nex.runningWorkloads(namespace: "default", matching: "echo", node: second.nodeID,
                                                          window: .seconds(2))
            #expect(onSecond == [RunningWorkload(nodeID: second.nodeID, id: "w3", namespace: "default", name: "echo",
                                                 type: "native")])
            let byID = try await nex.runningWorkloads(namespace: "default", matching: "w2", window: .seconds(2))
            #expect(byID.map(\.name) == ["web"])
        }
    }

    @Test func artifactHashOfObjectsAndFiles() async throws {
        try await withNATSServer { server in
            let client = try NATSClient(options: NATSClientOptions(servers: [server.url]))
            try await client.connect()
            let content = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            let store = try await client.jetStream().createObjectStore(ObjectStoreConfig(bucket: "ARTIFACTS"))
            try await store.put("echo", data: content)
            let nex = NexClient(connection: client)
            #expect(try await nex.artifactHash(of: .objectStore(bucket: "ARTIFACTS", key: "echo")) == ArtifactDigest.sha256Hex(content))
            await #expect(throws: ObjectStoreError.self) {
                try await nex.artifactHash(of: .objectStore(bucket: "ARTIFACTS", key: "missing"))
            }
            let directory = try TemporaryDirectory()
            let path = directory.appending("echo")
            try Data(content).write(to: URL(fileURLWithPath: path))
            #expect(try await nex.artifactHash(of: .file(path: path)) == ArtifactDigest.sha256Hex(content))
            await client.close()
        }
    }
}
