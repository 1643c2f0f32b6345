import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// Each bad deploy or stop gets an error envelope saying what was wrong, and the node keeps
/// serving (and keeps running what it runs).
@Suite(.serialized) struct DeployRefusalEndToEndTests {
    static let trusted = try! NKeyPair.generate(.account)

    /// A node that trusts one issuer and takes artifacts up to 4 KiB.
    static func startNode(_ server: NATSServer) async throws -> NodeProcess {
        try await NodeProcess.start(server: server, .init(config: """
            {"valid_issuers": ["\(trusted.publicKey)"], "node_limits": {"max_workload_bytes": 4096}}
            """))
    }


    @Test func badDeploysAreRefusedWithTheReason() async throws {
        try await withNATSServer(jetStream: true) { server in
            let node = try await Self.startNode(server)
            try await withControlClient(server) { nex in
                let fixture = try WorkloadFixture(issuer: Self.trusted)
                let info = try await nex.info(namespace: "default", node: node.nodeID)
                // One workload that must keep running through all of this.
                let keeper = try await fixture.deploy(nex, node: node.nodeID, name: "keeper")

                func request(_ submission: WorkloadSubmission, issuer: NKeyPair = Self.trusted,
                             xkey: String = info.publicXKey) throws -> DeployRequest {
                    try submission.deployRequest(issuer: issuer, sender: fixture.sender, targetNode: node.nodeID, targetXKey: xkey)
                }
                func deploy(_ request: DeployRequest) async throws -> String {
                    try await refusal { try await nex.deploy(namespace: "default", node: node.nodeID, request: request) }
                }

                let otherHash = ArtifactDigest.sha256Hex(Array("something else".utf8))
                let realHash = try fixture.hash
                let mismatch = try await deploy(try request(try fixture.submission(name: "mismatch", hash: otherHash)))
                // The claimed hash is named; the artifact's real one never goes back to the deployer.
                #expect(mismatch.contains("hash mismatch") && mismatch.contains(otherHash) && !mismatch.contains(realHash), "\(mismatch)")

                var tampered = try request(try fixture.submission(name: "tampered"))
                // Flip a character in the middle of the signature (the last one may carry only padding bits).
                var characters = Array(tampered.workloadJWT)
                let middle = characters.count - 20
                characters[middle] = characters[middle] == "A" ? "B" : "A"
                tampered.workloadJWT = String(characters)
                let badSignature = try await deploy(tampered)
                #expect(badSignature.contains("workload_jwt") && badSignature.lowercased().contains("signature"), "\(badSignature)")

                let stranger = try NKeyPair.generate(.account)
                let untrusted = try await deploy(try request(try fixture.submission(name: "untrusted"), issuer: stranger))
                #expect(untrusted.contains("not a valid issuer") && untrusted.contains(String(stranger.publicKey.prefix(8))), "\(untrusted)")

                let otherNode = try XKeyPair.generate()
                let wrongXKey = try await deploy(try request(try fixture.submission(name: "sealed-elsewhere"), xkey: otherNode.publicKey))
                #expect(wrongXKey.contains("environment"), "\(wrongXKey)")

                // (A hash the node has not cached: with a cached one the location would not be read.)
                let absent = NodeUser.artifactRoot + "/nonexistent/nex-artifact"
                let missing = try WorkloadSubmission(name: "missing", location: .file(path: absent), artifactHash: otherHash)
                let notFound = try await deploy(try request(missing))
                #expect(notFound.contains("not found") && notFound.contains(absent), "\(notFound)")

                let big = try WorkloadFixture(script: "#!/bin/sh\n# " + String(repeating: "x", count: 5000) + "\n", issuer: Self.trusted)
                let tooBig = try await deploy(try request(try big.submission(name: "too-big")))
                #expect(tooBig.contains("max_workload_bytes") && tooBig.contains("4096"), "\(tooBig)")

                let garbage = try WorkloadFixture(script: String(repeating: "\u{7}\u{1}not a program\n", count: 4), issuer: Self.trusted)
                let notExecutable = try await deploy(try request(try garbage.submission(name: "not-a-program")))
                #expect(notExecutable.contains("did not start") && notExecutable.lowercased().contains("exec"), "\(notExecutable)")

                var wasm = try request(try fixture.submission(name: "wasm-one"))
                wasm.type = "wasm"
                let notAllowed = try await deploy(wasm)
                #expect(notAllowed.contains("wasm") && notAllowed.contains("not allowed"), "\(notAllowed)")

                // Stops: unknown id, another namespace, the deploy token replayed, another issuer.
                let unknown = try await refusal {
                    try await nex.stopWorkload(namespace: "default", node: node.nodeID, id: "nope", name: "keeper", issuer: Self.trusted)
                }
                #expect(unknown.contains("no such workload: nope"), "\(unknown)")
                let elsewhere = try await refusal {
                    try await nex.stopWorkload(namespace: "other", node: node.nodeID, id: keeper.id, name: "keeper", issuer: Self.trusted)
                }
                #expect(elsewhere.contains("no such workload: \(keeper.id)"), "\(elsewhere)")
                let keeperToken = try #require(fixture.lastDeployToken.value.withLock { $0 })
                let replayed = try await refusal {
                    try await nex.stop(namespace: "default", node: node.nodeID,
                                       request: StopRequest(workloadID: keeper.id, workloadJWT: keeperToken, targetNode: node.nodeID))
                }
                #expect(replayed.lowercased().contains("replay"), "\(replayed)")
                let wrongIssuer = try await refusal {
                    try await nex.stopWorkload(namespace: "default", node: node.nodeID, id: keeper.id, name: "keeper", issuer: stranger)
                }
                #expect(wrongIssuer.contains("workload_jwt"), "\(wrongIssuer)")

                // Still serving, and the keeper still runs.
                #expect(try await nex.ping(node: node.nodeID).runningMachines == 1)
                let machines = try await nex.info(namespace: "default", node: node.nodeID).machines
                #expect(machines.map(\.id) == [keeper.id] && machines.first?.state == "running")
            }
        }
    }

    @Test func lameDuckRefusesNewDeploysAndKeepsRunningOnes() async throws {
        try await withNATSServer(jetStream: true) { server in
            let node = try await Self.startNode(server)
            try await withControlClient(server) { nex in
                let fixture = try WorkloadFixture(issuer: Self.trusted)
                let running = try await fixture.deploy(nex, node: node.nodeID, name: "before")
                _ = try await nex.lameDuck(node: node.nodeID)
                let refused = try await refusal { try await fixture.deploy(nex, node: node.nodeID, name: "after") }
                #expect(refused.contains("lame duck"), "\(refused)")
                let machines = try await nex.info(namespace: "default", node: node.nodeID).machines
                #expect(machines.map(\.id) == [running.id])
            }
        }
    }
}

