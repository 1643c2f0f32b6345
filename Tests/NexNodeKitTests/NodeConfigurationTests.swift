import Foundation
import NATSWire
import NexControl
import NATSTestSupport
import Testing
@testable import NexNodeKit
import NexWorkloads

@Suite struct NodeConfigurationTests {
    static func parse(_ json: String) throws(NodeConfigurationError) -> NodeConfiguration {
        try NodeConfiguration(json: Data(json.utf8))
    }

    /// The error `json` raises; records an issue when it parses.
    static func refusal(_ json: String, sourceLocation: SourceLocation = #_sourceLocation) -> NodeConfigurationError? {
        do {
            let configuration = try parse(json)
            Issue.record("accepted: \(json) -> \(configuration)", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    @Test func emptyObjectGivesTheDefaults() throws {
        let configuration = try Self.parse("{}")
        #expect(configuration == NodeConfiguration())
        #expect(configuration.workloadTypes == [.native])
        #expect(configuration.machinePoolSize == 1)
        #expect(configuration.heartbeatIntervalSeconds == 30)
        #expect(configuration.hostServices.configuration.enabledServices == ["http", "kv", "messaging", "objectstore"])
        #expect(configuration.noSandbox == false, "sandboxed unless the operator says otherwise")
    }

    @Test func directTriggersNeedAnAccountKeyFileAndASaneLifetime() throws {
        let account = try NKeyPair.generate(.account).publicKey
        let configuration = try Self.parse(#"{"direct_triggers": {"signing_key_file": "/etc/nex/signing.nk", "account": "\#(account)", "ttl_seconds": 600}}"#)
        #expect(configuration.directTriggers == .init(signingKeyFile: "/etc/nex/signing.nk", account: account, lifetimeSeconds: 600))
        #expect(try Self.parse(#"{"direct_triggers": {"signing_key_file": "/k"}}"#).directTriggers?.lifetimeSeconds == 600)
        #expect(try Self.parse("{}").directTriggers == nil)
        let user = try NKeyPair.generate(.user).publicKey
        for (json, key) in [
            (#"{"direct_triggers": {}}"#, "direct_triggers.signing_key_file"),
            (#"{"direct_triggers": {"signing_key_file": "relative.nk"}}"#, "direct_triggers.signing_key_file"),
            (#"{"direct_triggers": {"signing_key_file": "/k", "account": "\#(user)"}}"#, "direct_triggers.account"),
            (#"{"direct_triggers": {"signing_key_file": "/k", "ttl_seconds": 5}}"#, "direct_triggers.ttl_seconds"),
            (#"{"direct_triggers": {"signing_key_file": "/k", "ttl_seconds": 100000}}"#, "direct_triggers.ttl_seconds"),
            (#"{"direct_triggers": {"signing_key_file": "/k", "seed": "SA..."}}"#, "direct_triggers.seed"),
        ] {
            #expect(Self.refusal(json)?.key == key, "\(json)")
        }
    }

    @Test func workloadLimitsHaveMaximaTheDefaultsMustRespect() throws {
        let configuration = try Self.parse(#"""
            {"workload_limits": {"memory_bytes": 1000, "cpu_millicores": 500},
             "max_workload_limits": {"memory_bytes": 4000, "processes": 64, "cpu_millicores": 2000}}
            """#)
        #expect(configuration.workloadLimits == ResourceLimits(memoryBytes: 1000, cpuMillicores: 500))
        #expect(configuration.maxWorkloadLimits == ResourceLimits(memoryBytes: 4000, processes: 64, cpuMillicores: 2000))
        let above = Self.refusal(#"{"workload_limits": {"processes": 65}, "max_workload_limits": {"processes": 64}}"#)
        #expect(above?.key == "workload_limits.processes" && above?.problem.contains("max_workload_limits.processes 64") == true)
        #expect(Self.refusal(#"{"max_workload_limits": {"cpu": 1}}"#)?.key == "max_workload_limits.cpu")
    }

    @Test func aDeployMayNotAskAboveTheMaxima() throws {
        let maxima = ResourceLimits(memoryBytes: 4000, cpuMillicores: 1000)
        try WorkloadManager.checkLimits(nil, within: maxima)
        try WorkloadManager.checkLimits(ResourceLimits(memoryBytes: 4000, processes: 1_000_000, cpuMillicores: 1), within: maxima)
        #expect { try WorkloadManager.checkLimits(ResourceLimits(memoryBytes: 4001), within: maxima) } throws: { error in
            "\(error)".contains("limits.memory_bytes 4001 is above this node's maximum 4000 (max_workload_limits.memory_bytes)")
        }
        #expect { try WorkloadManager.checkLimits(ResourceLimits(cpuMillicores: 0), within: maxima) } throws: { error in
            "\(error)".contains("limits.cpu_millicores must be greater than 0")
        }
        #expect { try WorkloadManager.checkLimits(ResourceLimits(openFiles: -5), within: ResourceLimits()) } throws: { error in
            "\(error)".contains("limits.open_files must be greater than 0 (got -5)")
        }
    }

    @Test func nexusIsAPlainToken() throws {
        #expect(try Self.parse(#"{"nexus": "east"}"#).nexus == "east")
        #expect(try Self.parse("{}").nexus == nil)
        for bad in ["", "a.b", "a b", "*", ">"] {
            #expect(Self.refusal(#"{"nexus": "\#(bad)"}"#)?.key == "nexus", "\(bad)")
        }
    }

    @Test func theStateBucketIsNamedAndReplicated() throws {
        let defaults = try Self.parse("{}")
        #expect(defaults.stateBucket == "nex_node_state" && defaults.stateReplicas == 1)
        let set = try Self.parse(#"{"state_bucket": "fleet-state", "state_replicas": 3}"#)
        #expect(set.stateBucket == "fleet-state" && set.stateReplicas == 3)
        #expect(Self.refusal(#"{"state_bucket": "a.b"}"#)?.key == "state_bucket")
        #expect(Self.refusal(#"{"state_replicas": 0}"#)?.key == "state_replicas")
        #expect(Self.refusal(#"{"state_replicas": 7}"#)?.key == "state_replicas")
    }

    @Test func autostartWorkloadsAreReadAsNex02WroteThem() throws {
        let config = try Self.parse("""
            {"autostart": {"workloads": [
              {"name": "echo", "namespace": "team", "type": "native", "location": "file:///srv/echo", "argv": ["-v"],
               "description": "an echo", "essential": true, "environment": {"A": "1"}, "limits": {"memory_bytes": 1048576}},
              {"name": "fn", "type": "javascript", "location": "nats://NEXCLIFILES/fn", "jsdomain": "hub",
               "trigger_subjects": ["fn.>"]}
            ]}}
            """)
        #expect(config.autostart.count == 2)
        let echo = config.autostart[0], fn = config.autostart[1]
        #expect(echo.name == "echo" && echo.namespace == "team" && echo.argv == ["-v"] && echo.essential == true)
        #expect(echo.environment == ["A": "1"] && echo.limits?.memoryBytes == 1_048_576 && echo.description == "an echo")
        #expect(fn.namespace == "default" && fn.jsDomain == "hub" && fn.triggerSubjects == ["fn.>"])
        #expect(Self.refusal(#"{"autostart": {"workloads": [{"type": "native", "location": "file:///x"}]}}"#)?.key == "autostart.workloads[0]")
        #expect(Self.refusal(#"{"autostart": {"workloads": [{"name": "a", "type": "native", "location": "file:///x", "env": {}}]}}"#)?.key == "autostart.workloads[0].env")
        #expect(Self.refusal(#"{"autostart": {"workloads": [{"name": "a", "type": "docker", "location": "file:///x"}]}}"#)?.key == "autostart.workloads[0].type")
        #expect(Self.refusal(#"{"autostart": {"workloads": [{"name": "a b", "type": "native", "location": "file:///x"}]}}"#)?.key == "autostart.workloads[0]")
        #expect(Self.refusal(#"{"autostart": {"workloads": [{"name": "a", "type": "native", "location": "http://x"}]}}"#)?.key == "autostart.workloads[0]")
        #expect(Self.refusal(#"{"autostart": {"workloads": [{"name": "a", "namespace": "system", "type": "native", "location": "file:///x"}]}}"#)?.key == "autostart.workloads[0]")
        #expect(Self.refusal(#"{"autostart": {"workloads": {}}}"#)?.key == "autostart.workloads")
        #expect(Self.refusal(#"{"autostart": {"workloadz": []}}"#)?.key == "autostart.workloadz")
        #expect(Self.refusal(#"{"autostart": {"stop_issuers": ["nope"]}}"#)?.key == "autostart.stop_issuers")
        let issuer = try NKeyPair.generate(.account).publicKey
        #expect(try Self.parse(#"{"autostart": {"stop_issuers": ["\#(issuer)"]}}"#).autostartStopIssuers == [issuer])
    }

    @Test func theNexusKeyNeedsANexusAndReschedulingAtLeastTwoSeconds() throws {
        let set = try Self.parse(#"{"nexus": "east", "nexus_xkey_seed_file": "/etc/nex/nexus.xk", "reschedule_after_seconds": 4}"#)
        #expect(set.nexusXKeySeedFile == "/etc/nex/nexus.xk" && set.rescheduleAfterSeconds == 4)
        #expect(try Self.parse("{}").rescheduleAfterSeconds == 10)
        #expect(Self.refusal(#"{"nexus_xkey_seed_file": "/k"}"#)?.key == "nexus_xkey_seed_file")
        #expect(Self.refusal(#"{"reschedule_after_seconds": 1}"#)?.key == "reschedule_after_seconds")
        #expect(Self.refusal(#"{"reschedule_after_seconds": "soon"}"#)?.key == "reschedule_after_seconds")
    }

    @Test func noSandboxIsABoolean() throws {
        #expect(try Self.parse(#"{"no_sandbox": true}"#).noSandbox)
        #expect(try !Self.parse(#"{"no_sandbox": false}"#).noSandbox)
        #expect(Self.refusal(#"{"no_sandbox": "yes"}"#)?.key == "no_sandbox")
    }

    @Test func everyKeyIsParsed() throws {
        let issuer = try NKeyPair.generate(.account).publicKey
        let json = """
        {
          "tags": {"zone": "a", "rack": "7"},
          "valid_issuers": ["\(issuer)"],
          "workload_types": ["native", "wasm", "v8"],
          "node_limits": {"max_workloads": 5, "max_total_bytes": 1000000, "max_workload_bytes": 2000, "max_concurrent_deploys": 9},
          "allowed_file_roots": ["/srv/artifacts", "/opt/nex"],
          "deny_trigger_subjects": ["secret.>", "private.*"],
          "machine_pool_size": 3,
          "host_services": {
            "nats_url": "nats://hs:4222",
            "nats_user_jwt": "eyJ.jwt",
            "nats_user_seed": "SUAseed",
            "services": {"kv": {"enabled": false}, "http": {"enabled": true, "config": {"timeout_ms": 1000}}}
          },
          "agent_handshake_timeout_ms": 2500,
          "agent_ping_timeout_ms": 300,
          "state_dir": "/var/lib/nex-test",
          "control": {
            "servers": ["nats://a:4222", "nats://b:4222"],
            "creds": "/etc/nex/node.creds",
            "nkey": "/etc/nex/node.nk",
            "user": "nex",
            "password": "secret",
            "token": "tok",
            "context": "prod"
          },
          "heartbeat_interval_seconds": 2.5,
          "stop_grace_period_seconds": 0
        }
        """
        let configuration = try Self.parse(json)
        #expect(configuration.tags == ["zone": "a", "rack": "7"])
        #expect(configuration.validIssuers == [issuer])
        #expect(configuration.workloadTypes == [.native, .wasm, .v8])
        #expect(configuration.nodeLimits.maxWorkloads == 5)
        #expect(configuration.nodeLimits.maxTotalBytes == 1_000_000)
        #expect(configuration.nodeLimits.maxWorkloadBytes == 2000)
        #expect(configuration.nodeLimits.maxConcurrentDeploys == 9)
        #expect(configuration.allowedFileRoots == ["/srv/artifacts", "/opt/nex"])
        #expect(configuration.denyTriggerSubjects == ["secret.>", "private.*"])
        #expect(configuration.machinePoolSize == 3)
        #expect(configuration.hostServices.natsURL == "nats://hs:4222")
        #expect(configuration.hostServices.natsUserJWT == "eyJ.jwt")
        #expect(configuration.hostServices.natsUserSeed == "SUAseed")
        #expect(configuration.hostServices.configuration.enabledServices == ["http", "messaging", "objectstore"])
        #expect(configuration.hostServices.configuration.http.timeout == .seconds(1))
        #expect(configuration.agentHandshakeTimeoutMilliseconds == 2500)
        #expect(configuration.agentPingTimeoutMilliseconds == 300)
        #expect(configuration.stateDirectory == "/var/lib/nex-test")
        #expect(configuration.control.servers == ["nats://a:4222", "nats://b:4222"])
        #expect(configuration.control.credsFile == "/etc/nex/node.creds")
        #expect(configuration.control.nkeySeedFile == "/etc/nex/node.nk")
        #expect(configuration.control.user == "nex")
        #expect(configuration.control.password == "secret")
        #expect(configuration.control.token == "tok")
        #expect(configuration.control.context == "prod")
        #expect(configuration.heartbeatIntervalSeconds == 2.5)
        #expect(configuration.stopGracePeriodSeconds == 0)
    }

    @Test func nullMeansTheDefault() throws {
        let configuration = try Self.parse(#"{"tags": null, "machine_pool_size": null, "control": null}"#)
        #expect(configuration == NodeConfiguration())
    }

    @Test func hostCallsInFlightPerAgentAreCapped() throws {
        #expect(try Self.parse("{}").hostServices.configuration.maxCallsInFlightPerAgent == 64)
        let configuration = try Self.parse(#"{"host_services": {"max_calls_in_flight_per_agent": 8}}"#)
        #expect(configuration.hostServices.configuration.maxCallsInFlightPerAgent == 8)
        #expect(Self.refusal(#"{"host_services": {"max_calls_in_flight_per_agent": 0}}"#)?.key
            == "host_services.max_calls_in_flight_per_agent")
    }

    @Test func aNex02ConfigIsAcceptedAndItsUnusedKeysListed() throws {
        let configuration = try Self.parse(NodeConfigurationSamples.nex02)
        #expect(configuration.ignoredKeys.map(\.key)
            == ["cni", "default_resource_dir", "internal_node_host", "kernel_filepath", "machine_template", "rate_limiters",
                "rootfs_filepath"])
        #expect(configuration.ignoredKeys.allSatisfy { !$0.reason.isEmpty })
        #expect(configuration.workloadTypes == [.native, .v8, .wasm])
        #expect(configuration.machinePoolSize == 1)
        // A typo is still refused: only 0.2's own keys are read past.
        #expect(Self.refusal(#"{"kernel_file_path": "/x"}"#)?.problem == "unknown key")
    }

    @Test func theConfigPreflightInitWritesIsValid() throws {
        let configuration = try Self.parse(NodeInitialization.defaultConfig(stateDirectory: "/var/lib/nex-node"))
        #expect(configuration.stateDirectory == "/var/lib/nex-node")
        #expect(configuration.workloadTypes == [.native, .wasm, .javascript] && !configuration.metrics.enabled)
        #expect(configuration.ignoredKeys.isEmpty)
    }

    @Test func nullHostServiceEntryMeansEnabled() throws {
        // Used to crash the node (a force unwrap of the entry).
        let configuration = try Self.parse(#"{"host_services": {"services": {"kv": null, "http": {"enabled": false}}}}"#)
        #expect(configuration.hostServices.configuration.isEnabled("kv"))
        #expect(!configuration.hostServices.configuration.isEnabled("http"))
    }

    @Test(arguments: [
        (#"{"tagz": {}}"#, "tagz"),
        (#"{"tags": {}, "workload_type": ["native"]}"#, "workload_type"),
        (#"{"node_limits": {"max_workloadz": 3}}"#, "node_limits.max_workloadz"),
        (#"{"control": {"serverz": ["nats://a"]}}"#, "control.serverz"),
        (#"{"host_services": {"nats_urll": "nats://a"}}"#, "host_services.nats_urll"),
        (#"{"host_services": {"services": {"kv": {"enable": true}}}}"#, "host_services.services.kv.enable"),
    ])
    func unknownKeysAreNamed(json: String, key: String) {
        guard let error = Self.refusal(json) else { return }
        #expect(error.key == key)
        #expect(error.problem == "unknown key")
        #expect(error.description.contains("'\(key)'"), "\(error)")
    }

    @Test(arguments: [
        (#"{"machine_pool_size": "two"}"#, "machine_pool_size"),
        (#"{"machine_pool_size": 1.5}"#, "machine_pool_size"),
        (#"{"machine_pool_size": true}"#, "machine_pool_size"),
        (#"{"tags": ["zone", "a"]}"#, "tags"),
        (#"{"tags": {"zone": 1}}"#, "tags.zone"),
        (#"{"valid_issuers": "ABC"}"#, "valid_issuers"),
        (#"{"valid_issuers": [1]}"#, "valid_issuers"),
        (#"{"workload_types": "native"}"#, "workload_types"),
        (#"{"node_limits": []}"#, "node_limits"),
        (#"{"node_limits": {"max_workloads": "5"}}"#, "node_limits.max_workloads"),
        (#"{"host_services": {"services": {"kv": {"enabled": "no"}}}}"#, "host_services.services.kv.enabled"),
        (#"{"state_dir": 7}"#, "state_dir"),
        (#"{"control": {"servers": "nats://a"}}"#, "control.servers"),
        (#"{"control": {"user": false}}"#, "control.user"),
        (#"{"heartbeat_interval_seconds": "30s"}"#, "heartbeat_interval_seconds"),
        (#"{"agent_ping_timeout_ms": "fast"}"#, "agent_ping_timeout_ms"),
    ])
    func wrongTypesAreNamed(json: String, key: String) {
        guard let error = Self.refusal(json) else { return }
        #expect(error.key == key, "\(error)")
        #expect(error.problem.hasPrefix("must"), "\(error)")
    }

    @Test(arguments: [
        (#"{"machine_pool_size": -1}"#, "machine_pool_size"),
        (#"{"machine_pool_size": 0}"#, "machine_pool_size"),
        (#"{"node_limits": {"max_workloads": -1}}"#, "node_limits.max_workloads"),
        (#"{"node_limits": {"max_total_bytes": -100}}"#, "node_limits.max_total_bytes"),
        (#"{"node_limits": {"max_workload_bytes": -2}}"#, "node_limits.max_workload_bytes"),
        (#"{"agent_handshake_timeout_ms": -5}"#, "agent_handshake_timeout_ms"),
        (#"{"heartbeat_interval_seconds": 0}"#, "heartbeat_interval_seconds"),
        (#"{"stop_grace_period_seconds": -1}"#, "stop_grace_period_seconds"),
        (#"{"node_limits": {"max_concurrent_deploys": 0}}"#, "node_limits.max_concurrent_deploys"),
        (#"{"allowed_file_roots": ["relative/artifacts"]}"#, "allowed_file_roots"),
        (#"{"allowed_file_roots": "/srv"}"#, "allowed_file_roots"),
    ])
    func negativeAndZeroCountsAreRefused(json: String, key: String) {
        guard let error = Self.refusal(json) else { return }
        #expect(error.key == key, "\(error)")
    }

    @Test func badWorkloadTypeIsNamed() {
        guard let error = Self.refusal(#"{"workload_types": ["native", "docker"]}"#) else { return }
        #expect(error.key == "workload_types")
        #expect(error.problem.contains("'docker'"))
    }

    @Test func badIssuerKeyIsNamed() throws {
        let user = try NKeyPair.generate(.account)
        for issuer in ["not-a-key", user.seed, "A" + String(repeating: "B", count: 55)] {
            guard let error = Self.refusal(#"{"valid_issuers": ["\#(issuer)"]}"#) else { continue }
            #expect(error.key == "valid_issuers")
            #expect(error.problem.contains("not a public nkey"), "\(error)")
        }
        _ = try Self.parse(#"{"valid_issuers": ["\#(user.publicKey)"]}"#)
    }

    @Test func badDenySubjectIsNamed() throws {
        for subject in ["", "a..b", "foo bar", ">.x"] {
            guard let error = Self.refusal(#"{"deny_trigger_subjects": ["\#(subject)"]}"#) else { continue }
            #expect(error.key == "deny_trigger_subjects", "\(subject): \(error)")
        }
        _ = try Self.parse(#"{"deny_trigger_subjects": ["$SYS.>", "a.*.c"]}"#)
    }

    @Test func badTagNamesAndEmptyServersAreRefused() {
        #expect(Self.refusal(#"{"tags": {"": "x"}}"#)?.key == "tags")
        #expect(Self.refusal(#"{"tags": {"two words": "x"}}"#)?.key == "tags")
        #expect(Self.refusal(#"{"control": {"servers": [""]}}"#)?.key == "control.servers")
    }

    @Test(arguments: ["", " ", "{", "{\"tags\": }", "nul"])
    func emptyOrMalformedFileIsRefused(json: String) {
        guard let error = Self.refusal(json) else { return }
        #expect(error.key == "")
        #expect(error.problem.contains("not valid JSON"), "\(error)")
    }

    @Test(arguments: ["[]", "[{}]", "42", "\"config\"", "null", "true"])
    func nonObjectJSONIsRefused(json: String) {
        guard let error = Self.refusal(json) else { return }
        #expect(error.problem.contains("JSON object"), "\(json): \(error)")
    }

    @Test func missingFileIsNamed() {
        let path = "/nonexistent/nex-node-\(UInt32.random(in: 0 ... .max)).json"
        #expect(throws: NodeConfigurationError(key: "", problem: "cannot read config file \(path)")) {
            try NodeConfiguration(contentsOf: path)
        }
    }
}
