import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// Issue 10's host-service attacks from a real function on a real node (defects 4 and 6): the
/// node gives host services their own connection, and a function of one namespace can neither
/// read nor overwrite another namespace's key-value data through `messaging`, nor read the NATS
/// monitor through `http`.
extension FunctionEndToEndTests {
    /// The NATS monitor's `/connz` as the test (not a function) sees it.
    static func connectionNames(monitorPort: Int) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["curl", "-sf", "http://127.0.0.1:\(monitorPort)/connz?limit=1000"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let connections = object?["connections"] as? [[String: Any]] ?? []
        return connections.compactMap { $0["name"] as? String }
    }

    @Test func aFunctionCannotReachAnotherNamespacesDataOrTheMonitor() async throws {
        try await withNATSServer(jetStream: true, monitoring: true) { server in
            let monitorPort = try #require(server.monitoringPort)
            try await withNode(server: server, .init(config: Self.config)) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-fn-")
                    let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()

                    // Host services have their own connection (not the control one), and the node says
                    // that the two planes share this server.
                    let names = try Self.connectionNames(monitorPort: monitorPort)
                    #expect(names.contains("nex-node \(node.nodeID)") && names.contains("nex-node host services \(node.nodeID)"), "\(names)")
                    #expect(node.log.contains("control and workload planes share a server"), "\(node.log)")

                    // The victim: acme's counter, at 3.
                    let counter = try Self.example("kv-counter.js", in: directory)
                    _ = try await deploy(nex, node: node.nodeID, path: counter, type: "javascript", name: "billing",
                                         triggers: ["acme.count"], issuer: issuer, sender: sender, namespace: "acme")
                    for expected in ["1", "2", "3"] {
                        #expect(try await nex.connection.request("", to: "acme.count", timeout: .seconds(10)).string == expected)
                    }

                    // The attacker, in namespace default: the review's steps, then the monitor.
                    let bucket = "hs_acme_billing_kv"
                    let script = try directory.write("""
                        async (subject, payload) => {
                          const attempts = [
                            ['request', '$JS.API.STREAM.NAMES', ''],
                            ['request', '$JS.API.STREAM.MSG.GET.KV_\(bucket)', '{"last_by_subj":"$KV.\(bucket).count"}'],
                            ['publish', '$KV.\(bucket).count', '999'],
                            ['request', '$KV.\(bucket).count', '999'],
                            ['publish', '_INBOX.forged', 'x'],
                          ];
                          const results = [];
                          for (const [method, target, body] of attempts) {
                            try {
                              const reply = await hostServices.messaging[method](target, body);
                              results.push({target, code: 200, reply: reply instanceof Uint8Array ? new TextDecoder().decode(reply) : JSON.stringify(reply)});
                            } catch (error) {
                              results.push({target, code: error.code ?? -1});
                            }
                          }
                          for (const url of ['http://127.0.0.1:\(monitorPort)/connz', 'http://localhost:\(monitorPort)/varz',
                                             'http://0x7f000001:\(monitorPort)/connz', 'http://169.254.169.254/latest/meta-data/']) {
                            try {
                              const reply = await hostServices.http.get(url);
                              results.push({target: url, code: 200, reply: JSON.stringify(reply)});
                            } catch (error) {
                              results.push({target: url, code: error.code ?? -1});
                            }
                          }
                          return results;
                        }
                        """, to: "thief.js")
                    _ = try await deploy(nex, node: node.nodeID, path: script, type: "javascript", name: "thief",
                                         triggers: ["thief.run"], issuer: issuer, sender: sender)
                    let reply = try await nex.connection.request("", to: "thief.run", timeout: .seconds(20))
                    let results = try #require(try JSONSerialization.jsonObject(with: Data(reply.payload.readableBytesView)) as? [[String: Any]],
                                               "\(reply.string) \(reply.headers.map { "\($0)" } ?? "")")
                    #expect(results.count == 9)
                    for result in results {
                        #expect(result["code"] as? Int == 403, "\(result)")
                        #expect(result["reply"] == nil, "\(result)")
                    }

                    // acme's value is intact, and its counter carries on.
                    let kv = try await nex.connection.jetStream().keyValue(bucket)
                    let entry = try await kv.get("count")
                    #expect(entry.string == "3" && entry.revision == 3)
                    #expect(try await nex.connection.request("", to: "acme.count", timeout: .seconds(10)).string == "4")
                    #expect(try await nex.ping(node: node.nodeID).runningMachines == 2)
                }
            }
        }
    }
}
