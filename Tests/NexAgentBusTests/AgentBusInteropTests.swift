import Foundation
import NATSTestSupport
import NATSWire
import NexAgentBus
import Testing

/// nats-py, an independent client, connects with an agent's nkey and meets the same rules.
@Suite(.enabled(if: PythonNATS.available, "python3 with nats-py is not installed"))
struct AgentBusInteropTests {


    static let script = """
        import asyncio, sys, nats
        async def main(url, seed):
            errors = []
            async def on_error(e): errors.append(str(e))
            nc = await nats.connect(url, nkeys_seed_str=seed, inbox_prefix=b"_INBOX.a1", error_cb=on_error,
                                    allow_reconnect=False)
            own = await nc.subscribe("agentint.a1.>")
            await nc.subscribe("agentint.a2.>")
            await nc.publish("hostint.a1.logs", b"from python")
            await nc.publish("hostint.a2.logs", b"forged")
            await nc.flush()
            msg = await own.next_msg(timeout=5)
            print("got", msg.subject, msg.data.decode())
            for _ in range(50):
                if len(errors) >= 2: break
                await asyncio.sleep(0.05)
            for e in errors: print("error", e)
            print("connected", nc.is_connected)
            await nc.close()
        asyncio.run(main(sys.argv[1], sys.argv[2]))
        """

    @Test func aStockClientIsHeldToTheAgentsPermissions() async throws {
        try await withTestBus { test in
            let node = try await test.connectNode()
            try await withTeardown({ await node.close() }) {
                let heard = try await node.subscribe(to: "hostint.>")
                try await node.flush()

                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = ["python3", "-c", Self.script, test.bus.url, test.agents["a1"]!.seed]
                let output = Pipe()
                process.standardOutput = output
                process.standardError = output
                try process.run()
                // The node's message reaches the python agent once it has subscribed.
                try await waitFor("python to subscribe") { await test.bus.connectionCount() == 2 }
                try await Task.sleep(for: .milliseconds(300))
                try await node.publish("to python", to: "agentint.a1.ping")
                let got = try await collect(heard, count: 1)
                #expect(got.map(\.subject) == ["hostint.a1.logs"])

                try await waitFor(timeout: .seconds(15), "python to finish") { !process.isRunning }
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                #expect(process.terminationStatus == 0, "\(text)")
                #expect(text.contains("got agentint.a1.ping to python"), "\(text)")
                #expect(text.lowercased().contains("permissions violation for subscription to \"agentint.a2.>\""), "\(text)")
                #expect(text.lowercased().contains("permissions violation for publish to \"hostint.a2.logs\""), "\(text)")
                #expect(text.contains("connected True"), "\(text)")
            }
        }
    }
}

enum PythonNATS {
    static let available: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import nats, nkeys"]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()
}
