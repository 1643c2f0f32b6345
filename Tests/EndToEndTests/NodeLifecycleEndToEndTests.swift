import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// Starting, stopping and restarting real `nex-node` processes.
@Suite struct NodeLifecycleEndToEndTests {
    @Test func nodeStartedThenHeartbeatsArrive() async throws {
        try await withNATSServer { server in
            try await withControlClient(server) { nex in
                let events = try await EventRecorder.start(nex)

                let node = try await NodeProcess.spawn(url: server.url, .init(tags: ["zone": "h"], heartbeatSeconds: 1))
                let started = try await events.waitFor(NexEventType.nodeStarted, from: node.nodeID, timeout: .seconds(10))
                #expect(started.specVersion == "1.0")
                #expect(started.data["id"]?.stringValue == node.nodeID)
                #expect(started.data["tags"]?["zone"]?.stringValue == "h")
                #expect(started.data["version"]?.stringValue?.isEmpty == false)

                let heartbeat = try await events.waitFor(NexEventType.heartbeat, from: node.nodeID, timeout: .seconds(5))
                #expect(heartbeat.data["node_id"]?.stringValue == node.nodeID)
                #expect(heartbeat.data["running_machines"]?.intValue == 0)
                #expect(heartbeat.data["uptime"]?.stringValue?.hasSuffix("s") == true)
            }
        }
    }

    @Test func sigtermPublishesNodeStoppedAndExitsZero() async throws {
        try await withNATSServer { server in
            try await withNode(server: server) { node in
                try await withControlClient(server) { nex in
                    let events = try await EventRecorder.start(nex)

                    node.terminate()
                    let status = try await node.waitForExit(timeout: .seconds(10))
                    #expect(status == 0, "exit status \(status); log:\n\(node.log)")
                    let stopped = try await events.waitFor(NexEventType.nodeStopped, from: node.nodeID)
                    #expect(stopped.data["graceful"]?.boolValue == true)
                    #expect(stopped.data["id"]?.stringValue == node.nodeID)

                    await #expect(throws: (any Error).self) { _ = try await nex.ping(node: node.nodeID) }
                }
            }
        }
    }

    @Test func nodeIDSurvivesARestartAndKeysArePrivate() async throws {
        try await withNATSServer { server in
            let state = try TemporaryDirectory(prefix: "nex-e2e-state-")
            let stateDirectory = state.appending("node")
            let first = try await NodeProcess.start(server: server, .init(stateDirectory: stateDirectory))
            try await withControlClient(server) { nex in
                let firstXKey = try await nex.ping(node: first.nodeID).targetXKey
                first.terminate()
                #expect(try await first.waitForExit() == 0)

                for name in ["node.nk", "node.xk"] {
                    let attributes = try FileManager.default.attributesOfItem(atPath: stateDirectory + "/" + name)
                    let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
                    #expect(mode == 0o600, "\(name) has mode \(String(mode, radix: 8))")
                }
                let directoryMode = (try FileManager.default.attributesOfItem(atPath: stateDirectory)[.posixPermissions] as? NSNumber)?.intValue
                #expect(directoryMode == 0o700)

                let second = try await NodeProcess.start(server: server, .init(stateDirectory: stateDirectory))
                #expect(second.nodeID == first.nodeID)
                let pong = try await nex.ping(node: first.nodeID)
                #expect(pong.nodeID == first.nodeID)
                #expect(pong.targetXKey == firstXKey)
            }
        }
    }

    @Test func notifySocketGetsReadyAndStopping() async throws {
        try await withNATSServer { server in
            let notify = try NotifySocket()
            let node = try await NodeProcess.spawn(url: server.url, .init(environment: ["NOTIFY_SOCKET": notify.path]))
            try await notify.waitFor("READY=1")
            // READY=1 is sent once the node serves: it must answer at once.
            try await withControlClient(server) { nex in
                #expect(try await nex.ping(node: node.nodeID).nodeID == node.nodeID)
                #expect(!notify.messages.contains { $0.contains("STOPPING=1") })

                node.terminate()
                try await notify.waitFor("STOPPING=1")
                #expect(try await node.waitForExit() == 0)
                let messages = notify.messages
                let ready = messages.firstIndex { $0.contains("READY=1") }, stopping = messages.firstIndex { $0.contains("STOPPING=1") }
                #expect(ready != nil && stopping != nil && ready! < stopping!, "\(messages)")
            }
        }
    }

    @Test func nodeComesBackAfterTheControlServerRestarts() async throws {
        try await withNATSServer { server in
            try await withNode(server: server) { node in
                try await withControlClient(server) { nex in
                    #expect(try await nex.ping(node: node.nodeID).nodeID == node.nodeID)

                    server.stop()
                    try await Task.sleep(for: .milliseconds(300))
                    try await server.restart()

                    // Both the node and our client reconnect by themselves; the node within a few seconds.
                    let clock = ContinuousClock()
                    let start = clock.now
                    let pong = try await waitForValue(timeout: .seconds(12), "node answers after the server restart; log:\n\(node.log)") {
                        try? await nex.ping(node: node.nodeID)
                    }
                    #expect(pong.nodeID == node.nodeID)
                    #expect(node.isRunning)
                    print("node answered again \(start.duration(to: clock.now)) after the control server restarted")
                }
            }
        }
    }
}
