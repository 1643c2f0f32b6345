import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// `nex-node up --dev` keeps the seed's separation: its private nats-server has a control
/// account (the node's control connection, nexctl) and a workload account (host services,
/// triggers, services), and neither sees the other's subjects.
extension FunctionEndToEndTests {
    @Test func devNodePutsControlAndWorkloadsInSeparateAccounts() async throws {
        let node = try await NodeProcess.spawn(
            url: "", .init(config: Self.config, extraArguments: ["--dev"]))
        defer { node.kill() }
        let urlPath = node.stateDirectory + "/dev-nats/url"
        let workloadPath = node.stateDirectory + "/dev-nats/workload-url"
        let deadline = ContinuousClock.now + .seconds(10)
        while (try? String(contentsOfFile: urlPath, encoding: .utf8)) == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let url = try String(contentsOfFile: urlPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let workloadURL = try String(contentsOfFile: workloadPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(workloadURL.hasPrefix("nats://workload:") && !url.contains("@"))
        let mode = try FileManager.default.attributesOfItem(atPath: workloadPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        try await node.waitUntilAnswering(url: url)
        // Host services got the workload account: no warning about shared planes.
        #expect(!node.log.contains("planes share a server"), "\(node.log)")

        let control = try NATSClient(options: TestConnection.options(url: url))
        try await control.connect()
        let workload = try NATSClient(options: TestConnection.options(url: workloadURL))
        try await workload.connect()
        try await withTeardown({ await control.close(); await workload.close() }) {
            let nex = NexClient(connection: control, timeout: .seconds(10))

            // The workload account cannot reach the control API.
            await #expect(throws: NATSError.self) {
                _ = try await workload.request("", to: "$NEX.PING", timeout: .seconds(1))
            }
            // A function is triggered from the workload account, not from the control one.
            let directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-dev-")
            let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()
            _ = try await deploy(nex, node: node.nodeID, path: try Self.example("echo.js", in: directory), type: "javascript",
                                 name: "echo", triggers: ["dev.echo"], issuer: issuer, sender: sender)
            let reply = try await workload.request("hi", to: "dev.echo", timeout: .seconds(10))
            #expect(reply.string.contains("\"payload\":\"hi\""), "\(reply.string)")
            await #expect(throws: NATSError.self) {
                _ = try await control.request("hi", to: "dev.echo", timeout: .seconds(1))
            }
            node.terminate()
            #expect(try await node.waitForExit() == 0)
        }
    }
}
