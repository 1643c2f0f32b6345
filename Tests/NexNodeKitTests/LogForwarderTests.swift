import Foundation
import Logging
import NATSTestSupport
import NATSWire
import NexAgentBus
import NexControl
import NIOCore
import Synchronization
import Testing
@testable import NexNodeKit

/// The node's log forwarding against a real bus, a real agent connection and a real nats-server.
@Suite struct LogForwarderTests {
    /// An agent that does not keep its workload's log rate (a compromised one) floods the bus with
    /// batches of empty lines: the node publishes no more than the rate allows, counts the rest
    /// as dropped, and still forwards the lines of a well-behaved neighbour.
    @Test func aFloodingAgentIsHeldToTheRateByTheNode() async throws {
        try await withNATSServer { server in
            try await withConnectedClient(to: server, configure: { $0.subscriptionPendingMessages = 2_000_000 }) { control in
                let bus = try AgentBus()
                try await bus.start()
                try await withTeardown({ await bus.shutdown() }) {
                    let link = try await bus.link()
                    let routes = LogRoutes()
                    routes.set("hostile", LogRoute(namespace: "ns", name: "flood", workloadID: "w-flood"))
                    routes.set("quiet", LogRoute(namespace: "ns", name: "calm", workloadID: "w-calm"))
                    let rate = LogRate(linesPerSecond: 1000, bytesPerSecond: 1 << 30)
                    let forwarder = LogForwarder(nodeID: "NNODE", routes: routes, control: control,
                                                 logger: Logger(label: "log-forwarder-test"), rate: rate)
                    let flooded = try await control.subscribe(to: NexSubject.logs(
                        namespace: "ns", node: "NNODE", workloadName: "flood", workloadID: "w-flood"))
                    let calm = try await control.subscribe(to: NexSubject.logs(
                        namespace: "ns", node: "NNODE", workloadName: "calm", workloadID: "w-calm"))
                    try await control.flush()
                    let messages = try await link.subscribe(to: AgentBusSubject.toHost("*", AgentVerb.logs))
                    let forwarding = Task { await forwarder.run(messages) }
                    defer { forwarding.cancel() }

                    let hostile = try await Self.agent("hostile", on: bus)
                    let quiet = try await Self.agent("quiet", on: bus)
                    let started = ContinuousClock.now
                    let batch = ByteBuffer(string: String(repeating: "\n", count: 60_000))  // 60,001 empty lines
                    for _ in 0..<10 {
                        try await hostile.publish(batch, to: AgentBusSubject.toHost("hostile", AgentVerb.logs),
                                                  headers: [AgentLogHeader.stream: "stdout"])
                    }
                    try await hostile.flush()
                    try await quiet.publish("still here", to: AgentBusSubject.toHost("quiet", AgentVerb.logs),
                                            headers: [AgentLogHeader.stream: "stderr"])
                    let neighbour = try await withTimeLimit(.seconds(10), "the neighbour's line") { () -> LogRecord? in
                        for await message in calm {
                            return try JSONDecoder().decode(LogRecord.self, from: Data(message.payload.readableBytesView))
                        }
                        return nil
                    }
                    #expect(neighbour == LogRecord(text: "still here", level: 2, id: "w-calm"))
                    try await waitFor("the flood to be counted") {
                        (routes.droppedLines(of: "w-flood") ?? 0) + flooded.pendingMessages >= 600_010 - 10_000
                    }
                    let elapsed = Double(started.duration(to: .now).components.seconds) + 1
                    let forwarded = flooded.pendingMessages + flooded.droppedMessages
                    let dropped = routes.droppedLines(of: "w-flood") ?? 0
                    print("flooding agent: \(forwarded) lines forwarded, \(dropped) dropped by the node in ~\(elapsed) s")
                    // Twice the rate (the node's slack), its two-second bucket, and what time passed.
                    #expect(forwarded <= 2 * 1000 * (2 + Int(elapsed) + 1), "\(forwarded) forwarded")
                    #expect(dropped > 500_000, "\(dropped) dropped")
                    #expect(routes.droppedLines(of: "w-calm") == nil)
                    await hostile.close()
                    await quiet.close()
                }
            }
        }
    }

    static func agent(_ id: String, on bus: AgentBus) async throws -> NATSClient {
        let key = try NKeyPair.generate(.user)
        await bus.addUser(publicKey: key.publicKey, permissions: .agent(id))
        var options = NATSClientOptions(servers: [bus.url])
        options.auth = .nkey(seed: key.seed)
        options.inboxPrefix = AgentEnvironment.inboxPrefix(agentID: id)
        let client = try NATSClient(options: options)
        try await client.connect()
        return client
    }
}
