import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// `autostart` (Nex 0.2's key): the node deploys the workloads its config lists when it starts.
@Suite struct AutostartEndToEndTests {
    /// A node starts its autostart service with the environment of its config; an entry whose
    /// artifact is missing is logged and does not stop the others; restarted, the node runs one
    /// copy (the config brings it back, not the state bucket); an issuer of
    /// `autostart.stop_issuers` stops it; a tenant's issuer of `valid_issuers` cannot.
    @Test func theNodeDeploysItsAutostartWorkloads() async throws {
        try await withNATSServer(jetStream: true) { server in
            let fixture = try WorkloadFixture()
            let trusted = try NKeyPair.generate(.account), tenant = try NKeyPair.generate(.account)
            let state = try TemporaryDirectory(prefix: "nex-e2e-autostart-")
            let config = """
                {"valid_issuers": ["\(tenant.publicKey)"], "autostart": {"stop_issuers": ["\(trusted.publicKey)"], "workloads": [
                  {"name": "missing", "type": "native", "location": "file://\(fixture.directory.path)/absent"},
                  {"name": "auto-svc", "type": "native", "location": "file://\(fixture.path)", "environment": {"GREETING": "from config"}}
                ]}}
                """
            let launch = NodeProcess.Launch(config: config, stateDirectory: state.appending("state"))
            try await withControlClient(server) { nex in
                let logs = try await LogRecorder.start(nex)
                let first = try await NodeProcess.start(server: server, launch)
                let found = try await waitForValue(timeout: .seconds(10), "auto-svc runs: \(first.log)") {
                    try? await nex.runningWorkloads(namespace: "default", matching: "auto-svc", window: .milliseconds(300)).first
                }
                try await waitFor(timeout: .seconds(5), "with its environment") {
                    logs.all.contains { $0.id == found.id && $0.text.contains("greeting=from config") }
                }
                #expect(first.log.contains("autostart: workload not deployed") && first.log.contains("missing"), "\(first.log)")
                first.terminate()
                _ = try await first.waitForExit()

                try await withNode(server: server, launch) { second in
                    let again = try await waitForValue(timeout: .seconds(10), "auto-svc runs again") {
                        try? await nex.runningWorkloads(namespace: "default", matching: "auto-svc", window: .milliseconds(300))
                            .nonEmpty
                    }
                    try await Task.sleep(for: .seconds(1))
                    let copies = try await nex.runningWorkloads(namespace: "default", matching: "auto-svc", window: .milliseconds(500))
                    #expect(copies.count == 1, "one copy, not one from the config and one from the state bucket: \(copies)")
                    let id = try #require(again.first?.id)

                    for stranger in [tenant, try NKeyPair.generate(.account)] {
                        await #expect(throws: NexControlError.self) {
                            try await nex.stopWorkload(namespace: "default", node: second.nodeID, id: id, name: "auto-svc", issuer: stranger)
                        }
                    }
                    let stopped = try await nex.stopWorkload(namespace: "default", node: second.nodeID, id: id, name: "auto-svc",
                                                            issuer: trusted)
                    #expect(stopped.stopped)
                }
            }
        }
    }
}

extension Array {
    /// Nil when empty.
    var nonEmpty: Self? { isEmpty ? nil : self }
}
