import Foundation
import NATSTestSupport
import NATSWire
import Testing

/// `nex-node up --config FILE` refuses a bad file at start: non-zero exit, the key named on stderr.
@Suite struct BadConfigEndToEndTests {
    struct BadConfig: Sendable, CustomStringConvertible {
        var json: String
        var key: String
        var problem: String
        var description: String { json }
    }

    static let configs = [
        BadConfig(json: #"{"tagz": {}}"#, key: "tagz", problem: "unknown key"),
        BadConfig(json: #"{"machine_pool_size": "two"}"#, key: "machine_pool_size", problem: "whole number"),
        BadConfig(json: #"{"machine_pool_size": 0}"#, key: "machine_pool_size", problem: "at least 1"),
        BadConfig(json: #"{"workload_types": ["native", "docker"]}"#, key: "workload_types", problem: "docker"),
        BadConfig(json: #"{"node_limits": {"max_workloadz": 3}}"#, key: "node_limits.max_workloadz", problem: "unknown key"),
        BadConfig(json: #"{"heartbeat_interval_seconds": -1}"#, key: "heartbeat_interval_seconds", problem: "greater than 0"),
        BadConfig(json: "[]", key: "", problem: "JSON object"),
    ]

    @Test(arguments: configs)
    func badConfigIsRefusedAtStart(_ bad: BadConfig) async throws {
        let directory = try TemporaryDirectory(prefix: "nex-e2e-config-")
        let config = try directory.write(bad.json, to: "node.json")
        // Nothing listens on port 1: a node that wrongly accepted the config would hang connecting.
        let result = try await runCommand(
            try Executables.nexNode,
            ["up", "-s", "nats://127.0.0.1:1", "--state-dir", directory.appending("state"), "--config", config],
            timeout: .seconds(10))
        #expect(result.status != 0, "\(bad) was accepted; stderr: \(result.stderr)")
        if !bad.key.isEmpty {
            #expect(result.stderr.contains("'\(bad.key)'"), "stderr does not name \(bad.key): \(result.stderr)")
        }
        #expect(result.stderr.contains(bad.problem), "stderr does not say '\(bad.problem)': \(result.stderr)")
        // Refused before any identity is made.
        #expect(!FileManager.default.fileExists(atPath: directory.appending("state/node.nk")))
    }

    /// A Nex 0.2 node config (as its `preflight --init` writes one) starts a node: each key we
    /// have no use for is one warning naming it, and the node serves.
    @Test func aNex02ConfigStartsWithOneWarningPerUnusedKey() async throws {
        try await withNATSServer { server in
            try await withNode(server: server, .init(config: NodeConfigurationSamples.nex02)) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let info = try await nex.info(namespace: "default", node: node.nodeID)
                    #expect(info.supportedWorkloadTypes == ["native", "v8", "wasm"])
                    #expect(info.tags?["simple"] == "true")
                }
                for key in ["cni", "default_resource_dir", "internal_node_host", "kernel_filepath", "machine_template",
                            "rate_limiters", "rootfs_filepath"] {
                    let warnings = node.log.components(separatedBy: "config key '\(key)' is Nex 0.2's and ignored").count - 1
                    #expect(warnings == 1, "\(key): \(warnings) warnings in \(node.log)")
                }
            }
        }
    }

    /// The nexus seed opens every reschedulable workload's environment: a node refuses to start
    /// with one that others may read, naming the file and the fix.
    @Test func aNexusSeedOthersMayReadIsRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "nex-e2e-config-")
        let seedFile = try directory.write(try XKeyPair.generate().seed, to: "nexus.xk")
        chmod(seedFile, 0o644)
        let config = try directory.write(#"{"nexus": "east", "nexus_xkey_seed_file": "\#(seedFile)"}"#, to: "node.json")
        let result = try await runCommand(
            try Executables.nexNode,
            ["up", "-s", "nats://127.0.0.1:1", "--state-dir", directory.appending("state"), "--config", config],
            timeout: .seconds(10))
        #expect(result.status != 0)
        #expect(result.stderr.contains("nexus_xkey_seed_file") && result.stderr.contains("chmod 600"), "\(result.stderr)")
    }

    @Test func badTagFlagIsRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "nex-e2e-config-")
        let result = try await runCommand(
            try Executables.nexNode,
            ["up", "-s", "nats://127.0.0.1:1", "--state-dir", directory.appending("state"), "--tag", "novalue"],
            timeout: .seconds(10))
        #expect(result.status != 0)
        #expect(result.stderr.contains("--tag"), "\(result.stderr)")
    }

    @Test func missingConfigFileIsNamed() async throws {
        let directory = try TemporaryDirectory(prefix: "nex-e2e-config-")
        let missing = directory.appending("absent.json")
        let result = try await runCommand(
            try Executables.nexNode,
            ["up", "-s", "nats://127.0.0.1:1", "--state-dir", directory.appending("state"), "--config", missing],
            timeout: .seconds(10))
        #expect(result.status != 0)
        #expect(result.stderr.contains(missing), "\(result.stderr)")
    }
}
