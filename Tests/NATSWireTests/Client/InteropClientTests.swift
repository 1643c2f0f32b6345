import Foundation
import NATSTestSupport
import NATSWire
import NIOCore
import Synchronization
import Testing

/// NATSWire talking to nats-py (the reference Python client) through a real nats-server.
@Suite(.enabled(if: PythonNATS.isAvailable, "python3 with nats-py is not installed (python3 -c 'import nats' failed)"))
struct InteropClientTests {
    /// nats-py subscribes and prints every message as a JSON line.
    static let subscriberScript = #"""
        import asyncio, json, sys
        import nats

        async def main():
            url, subject, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
            nc = await nats.connect(url, allow_reconnect=False)
            done = asyncio.Event()
            count = 0

            async def handler(msg):
                nonlocal count
                count += 1
                print(json.dumps({
                    "subject": msg.subject,
                    "data": msg.data.decode("utf-8"),
                    "headers": msg.headers or {},
                }), flush=True)
                if count == expected:
                    done.set()

            await nc.subscribe(subject, cb=handler)
            await nc.flush()
            print("READY", flush=True)
            await asyncio.wait_for(done.wait(), 10)
            await nc.close()
            print("DONE", flush=True)

        asyncio.run(main())
        """#

    /// nats-py answers requests with the payload upper-cased (and echoes `X-Id` back).
    static let responderScript = #"""
        import asyncio, sys
        import nats

        async def main():
            url, subject = sys.argv[1], sys.argv[2]
            nc = await nats.connect(url, allow_reconnect=False)
            stop = asyncio.Event()

            async def handler(msg):
                headers = {"X-Answered-By": "nats-py"}
                if msg.headers and "X-Id" in msg.headers:
                    headers["X-Id"] = msg.headers["X-Id"]
                await nc.publish(msg.reply, msg.data.upper(), headers=headers)

            async def stopper(msg):
                stop.set()

            await nc.subscribe(subject, cb=handler)
            await nc.subscribe(subject + ".stop", cb=stopper)
            await nc.flush()
            print("READY", flush=True)
            await asyncio.wait_for(stop.wait(), 20)
            await nc.drain()
            print("DONE", flush=True)

        asyncio.run(main())
        """#

    /// nats-py sends requests with headers and prints the replies as JSON lines.
    static let requesterScript = #"""
        import asyncio, json, sys
        import nats

        async def main():
            url, subject, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
            nc = await nats.connect(url, allow_reconnect=False)
            for i in range(count):
                reply = await nc.request(subject, f"py-{i}".encode(), timeout=3, headers={"X-Seq": str(i)})
                print(json.dumps({"data": reply.data.decode(), "headers": reply.headers or {}}), flush=True)
            await nc.close()
            print("DONE", flush=True)

        asyncio.run(main())
        """#

    @Test func natsPySubscriberReceivesPublishesWithHeaders() async throws {
        try await withNATSServer(jetStream: false) { server in
            try await withConnectedClient(to: server) { client in
                let count = 25
                let python = try PythonNATS(script: Self.subscriberScript, arguments: [server.url, "interop.pub.>", "\(count)"])
                defer { python.stop() }
                try await python.waitForLine("READY")

                for index in 0..<count {
                    var headers = NATSHeaders()
                    headers.append("X-Index", "\(index)")
                    headers.append("X-Lang", "swift")
                    try await client.publish("message \(index) ✓", to: "interop.pub.\(index % 3)", headers: headers)
                }
                try await client.flush()
                try await python.waitForLine("DONE", timeout: .seconds(8))

                let received = python.jsonLines()
                #expect(received.count == count, "python printed: \(python.lines)")
                for (index, object) in received.enumerated() {
                    #expect(object["subject"] as? String == "interop.pub.\(index % 3)")
                    #expect(object["data"] as? String == "message \(index) ✓")
                    let headers = object["headers"] as? [String: String] ?? [:]
                    #expect(headers == ["X-Index": "\(index)", "X-Lang": "swift"], "headers of \(index): \(headers)")
                }
            }
        }
    }

    @Test func natsPyResponderAnswersRequests() async throws {
        try await withNATSServer(jetStream: false) { server in
            try await withConnectedClient(to: server) { client in
                let python = try PythonNATS(script: Self.responderScript, arguments: [server.url, "interop.upper"])
                defer { python.stop() }
                try await python.waitForLine("READY")

                for word in ["hello", "NATS wire", "mixed Case 123", ""] {
                    let reply = try await client.request(word, to: "interop.upper", timeout: .seconds(3))
                    #expect(reply.string == word.uppercased())
                    #expect(reply.headers?["X-Answered-By"] == "nats-py")
                }
                // Concurrent requests through the muxed inbox, each with its own id.
                let replies = try await withThrowingTaskGroup(of: (Int, NATSMessage).self) { group in
                    for index in 0..<50 {
                        group.addTask {
                            let reply = try await client.request(
                                "req \(index)", to: "interop.upper", headers: NATSHeaders(["X-Id": "\(index)"]), timeout: .seconds(5))
                            return (index, reply)
                        }
                    }
                    var replies: [Int: NATSMessage] = [:]
                    for try await (index, reply) in group { replies[index] = reply }
                    return replies
                }
                for index in 0..<50 {
                    #expect(replies[index]?.string == "REQ \(index)")
                    #expect(replies[index]?.headers?["X-Id"] == "\(index)")
                }
                try await client.publish("", to: "interop.upper.stop")
                try await python.waitForLine("DONE", timeout: .seconds(5))
            }
        }
    }

    @Test func natsWireRespondsToNatsPyRequests() async throws {
        try await withNATSServer(jetStream: false) { server in
            try await withConnectedClient(to: server) { client in
                let sub = try await client.subscribe(to: "interop.swift.svc")
                try await client.flush()
                let responder = Task {
                    for await message in sub {
                        guard let reply = message.replyTo else { continue }
                        var headers = NATSHeaders()
                        headers.append("X-Seq", message.headers?["X-Seq"] ?? "missing")
                        headers.append("X-Answered-By", "natswire")
                        try? await client.publish("swift:" + message.string, to: reply, headers: headers)
                    }
                }
                defer { responder.cancel() }

                let count = 10
                let python = try PythonNATS(script: Self.requesterScript, arguments: [server.url, "interop.swift.svc", "\(count)"])
                defer { python.stop() }
                try await python.waitForLine("DONE", timeout: .seconds(8))
                let replies = python.jsonLines()
                #expect(replies.count == count, "python printed: \(python.lines)\nstderr: \(python.standardError)")
                for (index, object) in replies.enumerated() {
                    #expect(object["data"] as? String == "swift:py-\(index)")
                    let headers = object["headers"] as? [String: String] ?? [:]
                    #expect(headers["X-Seq"] == "\(index)")
                    #expect(headers["X-Answered-By"] == "natswire")
                }
            }
        }
    }
}

/// A python3 process running an embedded nats-py script; its stdout is collected line by line.
final class PythonNATS: Sendable {
    static let isAvailable: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import nats"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return false
        }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    private struct Output {
        var pending = Data()
        var lines: [String] = []
        var standardError = Data()
    }

    private final class OutputBox: Sendable {
        let state = Mutex(Output())
        func withLock<T>(_ body: (inout Output) -> T) -> T { state.withLock { body(&$0) } }
    }

    private let process: Process
    private let output = OutputBox()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()

    init(script: String, arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", "-c", script] + arguments
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = FileHandle.nullDevice
        self.process = process
        stdoutPipe.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            output.withLock { out in
                out.pending.append(data)
                while let newline = out.pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = out.pending[out.pending.startIndex..<newline]
                    out.lines.append(String(decoding: line, as: UTF8.self))
                    out.pending = Data(out.pending[(newline + 1)...])
                }
            }
            if data.isEmpty { handle.readabilityHandler = nil }
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            output.withLock { $0.standardError.append(data) }
            if data.isEmpty { handle.readabilityHandler = nil }
        }
        try process.run()
    }

    var lines: [String] { output.withLock { $0.lines } }
    var standardError: String { output.withLock { String(decoding: $0.standardError, as: UTF8.self) } }

    /// The printed lines that are JSON objects, in order.
    func jsonLines() -> [[String: Any]] {
        lines.compactMap { line in
            guard line.hasPrefix("{") else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    /// Waits until the script prints `line`; fails early, with its stderr, if it exits first.
    func waitForLine(_ line: String, timeout: Duration = .seconds(5)) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while !lines.contains(line) {
            if !process.isRunning {
                try await Task.sleep(for: .milliseconds(50))  // let the pipe handler catch up
                if lines.contains(line) { return }
                throw PythonScriptError(
                    "python exited with \(process.terminationStatus) before printing \(line)", stdout: lines, stderr: standardError)
            }
            if clock.now >= deadline {
                throw PythonScriptError("python did not print \(line) within \(timeout)", stdout: lines, stderr: standardError)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Terminates the script (this process only) if it is still running.
    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        stdoutPipe.fileHandleForReading.readabilityHandler = nil
        stderrPipe.fileHandleForReading.readabilityHandler = nil
    }

    deinit { stop() }
}

struct PythonScriptError: Error, CustomStringConvertible {
    let message: String
    let stdout: [String]
    let stderr: String

    init(_ message: String, stdout: [String], stderr: String) {
        self.message = message
        self.stdout = stdout
        self.stderr = stderr
    }

    var description: String { "\(message)\nstdout: \(stdout.joined(separator: "\n"))\nstderr: \(stderr)" }
}
