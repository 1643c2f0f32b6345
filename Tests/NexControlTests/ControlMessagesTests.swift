import Foundation
import NATSWire
import Testing
@testable import NexControl

/// The JSON of every control message, field for field as in Nex 0.2 (digest §1.3, §1.6).
@Suite struct ControlMessagesTests {
    // MARK: Field names on encode

    @Test func deployRequestFieldNames() throws {
        let settings = NATSConnectionSettings(natsURL: "nats://h:4222", natsUserJWT: "eyJ...", natsUserSeed: "SU...")
        var request = DeployRequest(
            type: "native", location: "nats://NEXCLIFILES/echo", workloadJWT: "jwt", environment: "ZW52",
            senderPublicKey: "XSENDER", targetNode: "NNODE", argv: ["-v"], description: "echo service",
            essential: true, jsDomain: "hub", triggerSubjects: ["echo.>"])
        request.triggerConnection = settings
        request.hostServices = settings
        request.retryCount = 2
        request.retriedAt = "2024-07-02T10:00:00Z"
        let object = try jsonObject(request)
        #expect(Set(object.keys) == [
            "argv", "description", "type", "location", "essential", "workload_jwt", "environment", "jsdomain",
            "sender_public_key", "target_node", "trigger_subjects", "trigger_connection", "retry_count",
            "retried_at", "host_services",
        ])
        let connection = try #require(object["trigger_connection"] as? [String: Any])
        #expect(Set(connection.keys) == ["nats_url", "nats_user_jwt", "nats_user_seed"])
        let hostServices = try #require(object["host_services"] as? [String: Any])
        #expect(Set(hostServices.keys) == ["nats_url", "nats_user_jwt", "nats_user_seed"])
        #expect(object["workload_jwt"] as? String == "jwt")
        #expect(object["sender_public_key"] as? String == "XSENDER")
    }

    @Test func deployRequestOmitsAbsentOptionals() throws {
        let request = DeployRequest(
            type: "wasm", location: "nats://B/k", workloadJWT: "jwt", environment: "", senderPublicKey: "X",
            targetNode: "N")
        #expect(Set(try jsonObject(request).keys) == [
            "type", "location", "workload_jwt", "environment", "sender_public_key", "target_node",
        ])
    }

    @Test func runAndStopFieldNames() throws {
        #expect(Set(try jsonObject(RunResponse(started: true, id: "w1", issuer: "AISS", name: "echo")).keys)
            == ["started", "id", "issuer", "name"])
        #expect(Set(try jsonObject(StopRequest(workloadID: "w1", workloadJWT: "jwt", targetNode: "N")).keys)
            == ["workload_id", "workload_jwt", "target_node"])
        #expect(Set(try jsonObject(StopResponse(stopped: true, id: "w1", issuer: "AISS", name: "echo")).keys)
            == ["stopped", "id", "issuer", "name"])
    }

    @Test func pingAuctionAndWorkloadPingFieldNames() throws {
        let ping = PingResponse(
            nodeID: "N1", nexus: "nexus", version: "0.1.0", uptime: "1m2s", targetXKey: "X1",
            tags: ["nex.os": "linux"], runningMachines: 3)
        #expect(Set(try jsonObject(ping).keys)
            == ["node_id", "nexus", "version", "uptime", "target_xkey", "tags", "running_machines"])

        let auction = AuctionRequest(arch: "amd64", os: "linux", sandboxed: false, tags: ["a": "b"],
                                     workloadTypes: ["native"])
        #expect(Set(try jsonObject(auction).keys) == ["arch", "os", "sandboxed", "tags", "workload_types"])

        let machine = WorkloadPingResponse.Machine(id: "w1", namespace: "default", name: "echo", type: "native")
        let workloadPing = WorkloadPingResponse(
            nodeID: "N1", targetXKey: "X1", version: "0.1.0", tags: ["a": "b"], uptime: "5s", runningMachines: [machine])
        let object = try jsonObject(workloadPing)
        #expect(Set(object.keys) == ["node_id", "target_xkey", "version", "tags", "uptime", "running_machines"])
        let machines = try #require(object["running_machines"] as? [[String: Any]])
        #expect(Set(machines[0].keys) == ["id", "namespace", "name", "type"])
    }

    @Test func infoFieldNames() throws {
        let summary = MachineSummary(
            id: "w1", healthy: true, uptime: "3s", namespace: "default",
            workload: .init(name: "echo", description: "d", runtime: "3s", type: "native", hash: "ab"))
        let info = InfoResponse(
            version: "0.1.0", uptime: "1h0m0s", publicXKey: "X1", tags: ["a": "b"],
            memory: .init(total: 1, free: 2, available: 3), machines: [summary], supportedWorkloadTypes: ["native"])
        let object = try jsonObject(info)
        #expect(Set(object.keys)
            == ["version", "uptime", "public_xkey", "tags", "memory", "machines", "supported_workload_types"])
        let memory = try #require(object["memory"] as? [String: Any])
        #expect(Set(memory.keys) == ["total", "free", "available"])
        let machine = try #require((object["machines"] as? [[String: Any]])?.first)
        #expect(Set(machine.keys) == ["id", "healthy", "uptime", "namespace", "workload"])
        let workload = try #require(machine["workload"] as? [String: Any])
        #expect(Set(workload.keys) == ["name", "description", "runtime", "type", "hash"])
    }

    @Test func lameDuckFieldNames() throws {
        #expect(Set(try jsonObject(LameDuckResponse(nodeID: "N1", success: true)).keys) == ["node_id", "success"])
    }

    @Test func eventAndLogFieldNames() throws {
        let event = NexEvent(source: "N1", type: NexEventType.nodeStarted,
                             data: NodeStartedEvent(version: "0.1.0", id: "N1", tags: ["a": "b"]), namespace: "system")
        let object = try jsonObject(event)
        #expect(Set(object.keys)
            == ["specversion", "id", "source", "type", "time", "datacontenttype", "data", "namespace"])
        #expect(object["specversion"] as? String == "1.0")
        #expect(object["datacontenttype"] as? String == "application/json")
        #expect(Set(try #require(object["data"] as? [String: Any]).keys) == ["version", "id", "tags"])

        #expect(Set(try jsonObject(NodeStoppedEvent(id: "N1", graceful: true)).keys) == ["id", "graceful"])
        #expect(Set(try jsonObject(HeartbeatEvent(version: "v", nodeID: "N1", nexus: "n", uptime: "1s",
                                                   tags: ["a": "b"], runningMachines: 0)).keys)
            == ["version", "node_id", "nexus", "uptime", "tags", "running_machines"])
        #expect(Set(try jsonObject(LameDuckEnteredEvent(version: "v", id: "N1")).keys) == ["version", "id"])
        #expect(Set(try jsonObject(LogRecord(text: "hi", level: 4, id: "w1")).keys) == ["text", "level", "id"])
    }

    // MARK: Decoding Nex 0.2-shaped JSON

    @Test func decodesNex02DeployRequest() throws {
        let json = """
            {"argv":["-port","8080"],"description":"echo","type":"native","location":"nats://NEXCLIFILES/echoservice",
             "essential":true,"workload_jwt":"eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln",
             "environment":"eGt2MQ==","jsdomain":"","sender_public_key":"XAL54S5FE6SRPONXRNVE4ZDAOHOT44GFIY2ZW33DHLR2U3H2HJSXXRKY",
             "target_node":"NCUU2YIYXEPGTCDXDKQR7LL5PXDHIDG7SDFLWKE3WY63ZGCZL2HKIAJT",
             "trigger_subjects":["echo.>"],
             "trigger_connection":{"nats_url":"nats://127.0.0.1:4222","nats_user_jwt":"","nats_user_seed":""},
             "retry_count":1,"retried_at":"2024-07-02T10:00:00Z",
             "host_services":{"nats_url":"nats://127.0.0.1:4222"}}
            """
        let request = try JSONDecoder().decode(DeployRequest.self, from: Data(json.utf8))
        #expect(request.argv == ["-port", "8080"])
        #expect(request.type == "native")
        #expect(request.location == "nats://NEXCLIFILES/echoservice")
        #expect(request.essential == true)
        #expect(request.environment == "eGt2MQ==")
        #expect(request.jsDomain == "")
        #expect(request.senderPublicKey.hasPrefix("XAL54"))
        #expect(request.targetNode.hasPrefix("NCUU2"))
        #expect(request.triggerSubjects == ["echo.>"])
        #expect(request.triggerConnection?.natsURL == "nats://127.0.0.1:4222")
        #expect(request.retryCount == 1)
        #expect(request.retriedAt == "2024-07-02T10:00:00Z")
        #expect(request.hostServices == NATSConnectionSettings(natsURL: "nats://127.0.0.1:4222"))
    }

    @Test func decodesNex02Replies() throws {
        let ping = try JSONDecoder().decode(PingResponse.self, from: Data("""
            {"node_id":"N1","nexus":"nexus","version":"0.2.7","uptime":"1d2h3m4s","target_xkey":"X1",
             "tags":{"nex.os":"linux","node_name":"fluffy"},"running_machines":2}
            """.utf8))
        #expect(ping == PingResponse(nodeID: "N1", nexus: "nexus", version: "0.2.7", uptime: "1d2h3m4s",
                                     targetXKey: "X1", tags: ["nex.os": "linux", "node_name": "fluffy"],
                                     runningMachines: 2))

        let run = try JSONDecoder().decode(RunResponse.self, from: Data("""
            {"started":true,"id":"couhd3752omu7o74h4fg","issuer":"AISS","name":"echo"}
            """.utf8))
        #expect(run == RunResponse(started: true, id: "couhd3752omu7o74h4fg", issuer: "AISS", name: "echo"))

        let stop = try JSONDecoder().decode(StopRequest.self, from: Data("""
            {"workload_id":"couhd3752omu7o74h4fg","workload_jwt":"jwt","target_node":"N1"}
            """.utf8))
        #expect(stop == StopRequest(workloadID: "couhd3752omu7o74h4fg", workloadJWT: "jwt", targetNode: "N1"))

        let stopped = try JSONDecoder().decode(StopResponse.self, from: Data("""
            {"stopped":true,"id":"w1","issuer":"AISS","name":"echo"}
            """.utf8))
        #expect(stopped == StopResponse(stopped: true, id: "w1", issuer: "AISS", name: "echo"))

        let workloadPing = try JSONDecoder().decode(WorkloadPingResponse.self, from: Data("""
            {"node_id":"N1","target_xkey":"X1","version":"0.2.7","uptime":"5s",
             "running_machines":[{"id":"w1","namespace":"default","name":"echo","type":"native"}]}
            """.utf8))
        #expect(workloadPing.tags == nil)
        #expect(workloadPing.runningMachines == [.init(id: "w1", namespace: "default", name: "echo", type: "native")])

        let info = try JSONDecoder().decode(InfoResponse.self, from: Data("""
            {"version":"0.2.7","uptime":"10s","public_xkey":"X1","tags":{"a":"b"},
             "memory":{"total":16000000,"free":8000000,"available":12000000},
             "machines":[{"id":"w1","healthy":true,"uptime":"9s","namespace":"default",
                          "workload":{"name":"echo","description":"e","runtime":"9s","type":"native","hash":"abc"}}],
             "supported_workload_types":["native","v8"]}
            """.utf8))
        #expect(info.publicXKey == "X1")
        #expect(info.memory == .init(total: 16_000_000, free: 8_000_000, available: 12_000_000))
        #expect(info.machines.first?.workload.hash == "abc")
        #expect(info.supportedWorkloadTypes == ["native", "v8"])

        let auction = try JSONDecoder().decode(AuctionRequest.self, from: Data("""
            {"arch":"amd64","os":"linux","sandboxed":true,"tags":{"gpu":"yes"},"workload_types":["wasm"]}
            """.utf8))
        #expect(auction == AuctionRequest(arch: "amd64", os: "linux", sandboxed: true, tags: ["gpu": "yes"],
                                          workloadTypes: ["wasm"]))

        let lameDuck = try JSONDecoder().decode(LameDuckResponse.self, from: Data(#"{"node_id":"N1","success":true}"#.utf8))
        #expect(lameDuck == LameDuckResponse(nodeID: "N1", success: true))
    }

    @Test func decodesNex02CloudEvent() throws {
        let json = """
            {"specversion":"1.0","id":"6b0f1c9e-6d3a-4c1e-9c57-2f1f7d1f0a11","source":"N1","type":"node_started",
             "datacontenttype":"application/json","time":"2024-07-02T10:00:00.123456789Z",
             "data":{"version":"0.2.7","id":"N1","tags":{"node_name":"fluffy"}}}
            """
        let event = try JSONDecoder().decode(NexEvent<NodeStartedEvent>.self, from: Data(json.utf8))
        #expect(event.type == "node_started")
        #expect(event.source == "N1")
        #expect(event.namespace == nil)
        #expect(event.data == NodeStartedEvent(version: "0.2.7", id: "N1", tags: ["node_name": "fluffy"]))
    }

    // MARK: Envelope

    @Test func successEnvelopeShape() throws {
        let envelope = ControlEnvelope(type: ControlResponseType.lameDuck, data: LameDuckResponse(nodeID: "N1", success: true))
        let object = try jsonObject(envelope)
        #expect(Set(object.keys) == ["type", "data"])
        #expect(object["type"] as? String == "io.nats.nex.v1.lameduck_response")
        let data = try #require(object["data"] as? [String: Any])
        #expect(data["node_id"] as? String == "N1")
    }

    @Test func failureEnvelopeShape() throws {
        let bytes = ControlServer.failure(ControlResponseType.run, "no such workload type 'elf'")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any])
        #expect(Set(object.keys) == ["type", "data", "error"])
        #expect(object["type"] as? String == "io.nats.nex.v1.run_response")
        #expect(object["data"] as? String == "")
        #expect(object["error"] as? String == "no such workload type 'elf'")

        var envelope = ControlEnvelope(type: ControlResponseType.stop, data: StopResponse(stopped: false, id: "", issuer: "", name: ""))
        envelope.error = "refused"
        let encoded = try jsonObject(envelope)
        #expect(encoded["data"] as? String == "")
        #expect(encoded["error"] as? String == "refused")
    }

    @Test func decodesFailureEnvelope() throws {
        let json = #"{"type":"io.nats.nex.v1.run_response","data":"","error":"node is in lame duck mode"}"#
        let envelope = try JSONDecoder().decode(ControlEnvelope<RunResponse>.self, from: Data(json.utf8))
        #expect(envelope.type == ControlResponseType.run)
        #expect(envelope.error == "node is in lame duck mode")
        #expect(envelope.data == nil)
    }

    @Test func decodesSuccessEnvelope() throws {
        let json = #"{"type":"io.nats.nex.v1.stop_response","data":{"stopped":true,"id":"w1","issuer":"A","name":"e"}}"#
        let envelope = try JSONDecoder().decode(ControlEnvelope<StopResponse>.self, from: Data(json.utf8))
        #expect(envelope.error == nil)
        #expect(envelope.data == StopResponse(stopped: true, id: "w1", issuer: "A", name: "e"))
    }

    @Test func responseTypes() {
        #expect(ControlResponseType.ping == "io.nats.nex.v1.ping_response")
        #expect(ControlResponseType.auction == "io.nats.nex.v1.auction_response")
        #expect(ControlResponseType.info == "io.nats.nex.v1.info_response")
        #expect(ControlResponseType.run == "io.nats.nex.v1.run_response")
        #expect(ControlResponseType.stop == "io.nats.nex.v1.stop_response")
        #expect(ControlResponseType.lameDuck == "io.nats.nex.v1.lameduck_response")
    }

    // MARK: Uptime

    @Test(arguments: [
        (0, "0s"), (12, "12s"), (60, "1m0s"), (300, "5m0s"), (3599, "59m59s"), (3600, "1h0m0s"),
        (3661, "1h1m1s"), (86_400, "1d0h0m0s"), (93_784, "1d2h3m4s"), (-5, "0s"),
    ])
    func uptimeFormat(seconds: Int, expected: String) {
        #expect(Uptime.format(seconds: seconds) == expected)
    }
}

/// Encodes `value` and parses it back as a JSON object.
func jsonObject(_ value: some Encodable) throws -> [String: Any] {
    let data = try JSONEncoder().encode(value)
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}
