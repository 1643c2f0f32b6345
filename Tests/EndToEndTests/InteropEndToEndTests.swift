import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// A Nex 0.2-shaped client that is not ours (nats-py) drives a real node; the script prints what
/// it received as JSON and the assertions are made here.
@Suite struct InteropEndToEndTests {
    /// Requests as the Nex 0.2 Go client sends them: empty bodies for PING/INFO/LAMEDUCK, Go's
    /// `null` for unset optional fields of an AuctionRequest.
    static let script = #"""
    import asyncio, json, sys
    import nats

    async def main():
        url, node = sys.argv[1], sys.argv[2]
        nc = await nats.connect(url, connect_timeout=3, allow_reconnect=False)
        out = {}

        async def request(name, subject, body=b""):
            try:
                msg = await nc.request(subject, body, timeout=3)
                out[name] = json.loads(msg.data)
            except Exception as e:
                out[name] = {"python_error": repr(e)}

        async def gather(name, subject, body=b"", window=0.5):
            inbox = nc.new_inbox()
            replies = []
            async def on_message(msg):
                replies.append(json.loads(msg.data))
            sub = await nc.subscribe(inbox, cb=on_message)
            await nc.publish(subject, body, reply=inbox)
            await asyncio.sleep(window)
            await sub.unsubscribe()
            out[name] = replies

        await gather("ping_all", "$NEX.PING")
        await request("ping", "$NEX.PING." + node)
        await request("info", "$NEX.INFO.default." + node)
        await gather("auction_a", "$NEX.AUCTION", json.dumps({"tags": {"zone": "a"}}).encode())
        await gather("auction_go_nulls", "$NEX.AUCTION", json.dumps(
            {"arch": None, "os": None, "sandboxed": None, "tags": {"zone": "A"}, "workload_types": None}).encode())
        await gather("auction_b", "$NEX.AUCTION", json.dumps({"tags": {"zone": "b"}}).encode())
        await request("deploy_partial", "$NEX.DEPLOY.default." + node, json.dumps({"type": "native"}).encode())
        await request("lameduck", "$NEX.LAMEDUCK." + node)
        print(json.dumps(out))
        await nc.close()

    asyncio.run(main())
    """#

    static func pythonHasNATS() async -> Bool {
        (try? await runCommand("/usr/bin/env", ["python3", "-c", "import nats"], timeout: .seconds(10)))?.status == 0
    }

    @Test(.enabled("needs nats-py: python3 -c 'import nats' failed (pip install nats-py)") { await pythonHasNATS() })
    func natsPyClientDrivesTheNode() async throws {
        try await withNATSServer { server in
            try await withNode(server: server, .init(tags: ["zone": "a"])) { node in
                let directory = try TemporaryDirectory(prefix: "nex-e2e-py-")
                let script = try directory.write(Self.script, to: "nex02_client.py")
                let run = try await runCommand("/usr/bin/env", ["python3", script, server.url, node.nodeID], timeout: .seconds(15))
                #expect(run.status == 0, "python failed: \(run.stderr)")
                let out = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
                                       "not JSON: \(run.stdout) \(run.stderr)")

                func envelope(_ value: Any?, type: String, _ name: String) throws -> [String: Any] {
                    let object = try #require(value as? [String: Any], "\(name): \(String(describing: value))")
                    #expect(object["type"] as? String == type, "\(name): \(object)")
                    #expect(object["error"] == nil || object["error"] is NSNull, "\(name): \(object)")
                    return try #require(object["data"] as? [String: Any], "\(name): no data object in \(object)")
                }
                func checkPing(_ data: [String: Any], _ name: String) {
                    #expect(data["node_id"] as? String == node.nodeID, "\(name)")
                    #expect((data["target_xkey"] as? String)?.hasPrefix("X") == true, "\(name)")
                    #expect(data["uptime"] is String, "\(name)")
                    #expect(data["version"] is String, "\(name)")
                    #expect(data["running_machines"] as? Int == 0, "\(name)")
                    #expect((data["tags"] as? [String: String])?["zone"] == "a", "\(name)")
                }

                let pingAll = try #require(out["ping_all"] as? [Any])
                #expect(pingAll.count == 1)
                checkPing(try envelope(pingAll.first, type: "io.nats.nex.v1.ping_response", "ping_all"), "ping_all")
                checkPing(try envelope(out["ping"], type: "io.nats.nex.v1.ping_response", "ping"), "ping")

                let info = try envelope(out["info"], type: "io.nats.nex.v1.info_response", "info")
                #expect((info["public_xkey"] as? String)?.hasPrefix("X") == true)
                #expect(info["uptime"] is String && info["version"] is String)
                #expect(info["machines"] as? [Any] != nil)
                #expect(info["supported_workload_types"] as? [String] == ["native"])
                let memory = try #require(info["memory"] as? [String: Any])
                #expect(memory["total"] is Int && memory["free"] is Int && memory["available"] is Int)

                for name in ["auction_a", "auction_go_nulls"] {
                    let bids = try #require(out[name] as? [Any], "\(name)")
                    #expect(bids.count == 1, "\(name): \(bids)")
                    checkPing(try envelope(bids.first, type: "io.nats.nex.v1.auction_response", name), name)
                }
                #expect((out["auction_b"] as? [Any])?.isEmpty == true, "a zone=b auction got \(String(describing: out["auction_b"]))")

                // A failure is an envelope with data "" and the reason in error, as Nex 0.2 sends it.
                let partial = try #require(out["deploy_partial"] as? [String: Any])
                #expect(partial["type"] as? String == "io.nats.nex.v1.run_response")
                #expect(partial["data"] as? String == "")
                #expect((partial["error"] as? String)?.contains("missing field") == true, "\(partial)")

                let lameDuck = try envelope(out["lameduck"], type: "io.nats.nex.v1.lameduck_response", "lameduck")
                #expect(lameDuck["node_id"] as? String == node.nodeID)
                #expect(lameDuck["success"] as? Bool == true)
            }
        }
    }
}

/// Nex 0.2's CLI signs a placeholder (`abc12345TODOmakethisreal`) as the artifact hash: refused
/// by default; with `allow_unverified_hash` the node runs it, warns, and marks it unverified.
@Suite struct UnverifiedHashEndToEndTests {
    /// A deploy request as the 0.2 CLI builds one: its token's `nats.hash` is the placeholder.
    static func placeholderRequest(_ fixture: WorkloadFixture, node: String, xkey: String) throws -> DeployRequest {
        let token = try NATSJWT.encode(
            NATSJWTClaims(subject: "legacy", nats: ["hash": "abc12345TODOmakethisreal"]), signer: fixture.issuer)
        let environment = try EnvironmentSealing.seal([:], sender: fixture.sender, recipientPublicKey: xkey)
        return DeployRequest(type: "native", location: "file://" + fixture.path, workloadJWT: token.token,
                             environment: environment, senderPublicKey: fixture.sender.publicKey, targetNode: node)
    }

    @Test func aPlaceholderHashIsRefusedByDefault() async throws {
        try await withNATSServer { server in
            try await withNode(server: server) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let fixture = try WorkloadFixture()
                    let info = try await nex.info(namespace: "default", node: node.nodeID)
                    let request = try Self.placeholderRequest(fixture, node: node.nodeID, xkey: info.publicXKey)
                    let error = await #expect(throws: NexControlError.self) {
                        _ = try await nex.deploy(namespace: "default", node: node.nodeID, request: request)
                    }
                    #expect("\(error.map { "\($0)" } ?? "")".contains("nats.hash"), "\(String(describing: error))")
                    #expect(try await nex.info(namespace: "default", node: node.nodeID).machines.isEmpty)
                }
            }
        }
    }

    @Test func allowUnverifiedHashRunsItMarkedUnverified() async throws {
        try await withNATSServer { server in
            try await withNode(server: server, .init(config: #"{"allow_unverified_hash": true}"#)) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    #expect(node.log.contains("allow_unverified_hash is on"), "\(node.log)")
                    let fixture = try WorkloadFixture()
                    let info = try await nex.info(namespace: "default", node: node.nodeID)
                    let request = try Self.placeholderRequest(fixture, node: node.nodeID, xkey: info.publicXKey)
                    let response = try await nex.deploy(namespace: "default", node: node.nodeID, request: request)
                    #expect(response.started)
                    let machines = try await nex.info(namespace: "default", node: node.nodeID).machines
                    let machine = try #require(machines.first { $0.id == response.id })
                    #expect(machine.workload.unverified == true)
                    #expect(machine.workload.hash == (try fixture.hash), "the hash shown is what runs")
                    #expect(node.log.contains("hash is not verified"), "\(node.log)")

                    // A real hash is still checked: a wrong one is refused even here.
                    var wrong = try fixture.submission(name: "pinned", hash: String(repeating: "0", count: 64))
                        .deployRequest(issuer: fixture.issuer, sender: fixture.sender, targetNode: node.nodeID,
                                       targetXKey: info.publicXKey)
                    wrong.description = nil
                    await #expect(throws: NexControlError.self) {
                        _ = try await nex.deploy(namespace: "default", node: node.nodeID, request: wrong)
                    }
                    // A verified deploy is not marked.
                    let pinned = try await fixture.deploy(nex, node: node.nodeID, name: "pinned")
                    let all = try await nex.info(namespace: "default", node: node.nodeID).machines
                    #expect(all.first { $0.id == pinned.id }?.workload.unverified == nil)
                }
            }
        }
    }
}
