import Foundation
import NATSTestSupport
import NexControl
import Testing

/// The real `nexctl` binary against a real node.
@Suite struct NexctlEndToEndTests {
    @Test func nodeLsInfoAndLameDuck() async throws {
        try await withNATSServer { server in
            try await withNode(server: server, .init(tags: ["zone": "a", "node_name": "e2e-node"])) { node in
                let nexctl = try Executables.nexctl

                let table = try await runCommand(nexctl, ["node", "ls", "-s", server.url, "--timeout", "0.5"])
                #expect(table.status == 0, "\(table.stderr)")
                #expect(table.stdout.contains(node.nodeID), "\(table.stdout)")
                #expect(table.stdout.contains("e2e-node"))
                let row = try #require(table.stdout.split(separator: "\n").first { $0.hasPrefix(node.nodeID) })
                #expect(row.hasSuffix("no"), "lame duck column: \(row)")

                let json = try await runCommand(nexctl, ["node", "ls", "-s", server.url, "--timeout", "0.5", "--json"])
                #expect(json.status == 0, "\(json.stderr)")
                let nodes = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
                #expect(nodes.count == 1)
                #expect(nodes.first?["node_id"] as? String == node.nodeID)
                #expect((nodes.first?["target_xkey"] as? String)?.hasPrefix("X") == true)
                #expect((nodes.first?["tags"] as? [String: String])?["zone"] == "a")

                let info = try await runCommand(nexctl, ["node", "info", "-s", server.url, node.nodeID])
                #expect(info.status == 0, "\(info.stderr)")
                #expect(info.stdout.contains(node.nodeID))
                #expect(info.stdout.contains("native"))
                #expect(info.stdout.contains("zone = a"), "\(info.stdout)")
                let infoJSON = try await runCommand(nexctl, ["node", "info", "-s", server.url, node.nodeID, "--json"])
                let infoObject = try #require(try JSONSerialization.jsonObject(with: Data(infoJSON.stdout.utf8)) as? [String: Any])
                #expect((infoObject["public_xkey"] as? String)?.hasPrefix("X") == true)
                #expect(infoObject["supported_workload_types"] as? [String] == ["native"])

                let lameDuck = try await runCommand(nexctl, ["node", "lameduck", "-s", server.url, node.nodeID])
                #expect(lameDuck.status == 0, "\(lameDuck.stderr)")
                #expect(lameDuck.stdout.contains("lame duck"))
                let after = try await runCommand(nexctl, ["node", "ls", "-s", server.url, "--timeout", "0.5"])
                let rowAfter = try #require(after.stdout.split(separator: "\n").first { $0.hasPrefix(node.nodeID) })
                #expect(rowAfter.hasSuffix("yes"), "lame duck column: \(rowAfter)")
            }
        }
    }

    @Test func unreachableServerIsOneLineAndNonZero() async throws {
        let result = try await runCommand(try Executables.nexctl, ["node", "ls", "-s", "nats://127.0.0.1:1"])
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == 1, "stderr: \(result.stderr)")
        #expect(lines.first?.hasPrefix("nexctl:") == true, "stderr: \(result.stderr)")
        #expect(result.stdout.isEmpty, "stdout: \(result.stdout)")
    }

    @Test func unknownNodeIsOneLineAndNonZero() async throws {
        try await withNATSServer { server in
            let result = try await runCommand(
                try Executables.nexctl, ["node", "info", "-s", server.url, "--timeout", "0.5", "NBOGUSNODE"])
            #expect(result.status != 0)
            let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: true)
            #expect(lines.count == 1 && lines.first?.hasPrefix("nexctl:") == true, "stderr: \(result.stderr)")
        }
    }
}
