import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import NIOCore
import Testing

/// Functions on a real node: real nats-server, nex-node and nex-agent processes, WasmKit and
/// JavaScriptCore inside the agent, host services on the real JetStream.
@Suite(.serialized) struct FunctionEndToEndTests {
    static let config = #"{"workload_types": ["native", "wasm", "javascript"], "deny_trigger_subjects": ["secret.>"]}"#

    /// An example from examples/functions, or a wasm module built from its .wat.
    static func example(_ name: String, in directory: TemporaryDirectory) throws -> String {
        let source = Executables.repositoryRoot + "/examples/functions/" + name
        guard name.hasSuffix(".wat") else {
            // Nodes read file:// artifacts only under their allowed roots.
            let copy = directory.appending(name)
            try FileManager.default.copyItem(atPath: source, toPath: copy)
            return copy
        }
        let output = directory.appending(String(name.dropLast(4)) + ".wasm")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["wat2wasm", source, "-o", output]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw FunctionTestError("wat2wasm \(source) failed") }
        return output
    }

    static var wat2wasmAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/wat2wasm") }

    func deploy(_ nex: NexClient, node: String, path: String, type: String, name: String, triggers: [String],
                issuer: NKeyPair, sender: XKeyPair, namespace: String = "default") async throws -> RunResponse {
        let submission = try WorkloadSubmission(
            name: name, type: type, location: .file(path: path), artifactHash: try ArtifactDigest.sha256Hex(ofFile: path),
            triggerSubjects: triggers)
        return try await nex.deploy(submission, namespace: namespace, node: node, issuer: issuer, sender: sender)
    }

    @Test func javaScriptAndWasmEchoesAnswerOnTheirTriggers() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: Self.config)) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let events = try await EventRecorder.start(nex, namespace: "default")
                    let directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-fn-")
                    let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()

                    let js = try await deploy(nex, node: node.nodeID, path: try Self.example("echo.js", in: directory),
                                              type: "javascript", name: "echo-js", triggers: ["fn.js.>"], issuer: issuer, sender: sender)
                    #expect(js.started)
                    let reply = try await nex.connection.request("hello", to: "fn.js.greet", timeout: .seconds(10))
                    let object = try #require(try JSONSerialization.jsonObject(with: Data(reply.payload.readableBytesView)) as? [String: String])
                    #expect(object == ["triggered_on": "fn.js.greet", "payload": "hello"])
                    let succeeded = try await events.waitFor("function_exec_succeeded")
                    #expect(succeeded.source == "\(node.nodeID)-\(js.id)")

                    if Self.wat2wasmAvailable {
                        let wasm = try await deploy(nex, node: node.nodeID, path: try Self.example("echo.wat", in: directory),
                                                    type: "wasm", name: "echo-wasm", triggers: ["fn.wasm.*"], issuer: issuer, sender: sender)
                        #expect(wasm.started)
                        let echoed = try await nex.connection.request(ByteBuffer(bytes: Array(0..<200).map { UInt8($0) }), to: "fn.wasm.x",
                                                                      timeout: .seconds(10))
                        #expect(Array(echoed.payload.readableBytesView) == Array(0..<200).map { UInt8($0) })
                    }

                    // info: functions report their cumulative run time; both are listed.
                    let machines = try await nex.info(namespace: "default", node: node.nodeID).machines
                    #expect(machines.contains { $0.id == js.id && $0.workload.type == "javascript" })
                    #expect(machines.first { $0.id == js.id }?.workload.runtime.hasSuffix("s") == true)

                    // Stopped: the trigger goes away with it.
                    _ = try await nex.stopWorkload(namespace: "default", node: node.nodeID, id: js.id, name: "echo-js", issuer: issuer)
                    await #expect(throws: NATSError.noResponders(subject: "fn.js.greet")) {
                        _ = try await nex.connection.request("again", to: "fn.js.greet", timeout: .seconds(3))
                    }
                }
            }
        }
    }

    @Test func aFailureAlwaysAnswersTheRequester() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: Self.config)) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let events = try await EventRecorder.start(nex, namespace: "default")
                    let directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-fn-")
                    let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()
                    let script = try directory.write("""
                        (subject, payload) => {
                          if (new TextDecoder().decode(payload) === 'boom') throw new Error('asked to fail');
                          return 'fine';
                        }
                        """, to: "thrower.js")
                    _ = try await deploy(nex, node: node.nodeID, path: script, type: "javascript", name: "thrower",
                                         triggers: ["fn.throw"], issuer: issuer, sender: sender)

                    let failed = try await nex.connection.request("boom", to: "fn.throw", timeout: .seconds(10))
                    #expect(failed.payload.readableBytes == 0)
                    let reason = try #require(failed.headers?[FunctionHeader.error])
                    #expect(reason.contains("asked to fail"), "\(reason)")
                    let event = try await events.waitFor("function_exec_failed")
                    #expect("\(event.data)".contains("asked to fail"))
                    // The function carries on.
                    #expect(try await nex.connection.request("ok", to: "fn.throw", timeout: .seconds(10)).string == "fine")
                }
            }
        }
    }

    @Test func badFunctionsAreRefusedAtDeploy() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: Self.config)) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-fn-")
                    let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()
                    func refusal(_ path: String, type: String, triggers: [String]) async throws -> String {
                        do {
                            let run = try await deploy(nex, node: node.nodeID, path: path, type: type, name: "bad", triggers: triggers,
                                                       issuer: issuer, sender: sender)
                            Issue.record("accepted: \(run)")
                            return ""
                        } catch let error as NexControlError {
                            return "\(error)"
                        }
                    }
                    let echo = try Self.example("echo.js", in: directory)
                    let system = try await refusal(echo, type: "javascript", triggers: ["$SYS.REQ.x"])
                    #expect(system.contains("$SYS.REQ.x") && system.contains("$SYS.>"), "\(system)")
                    let denied = try await refusal(echo, type: "javascript", triggers: ["secret.*"])
                    #expect(denied.contains("secret.*") && denied.contains("secret.>"), "\(denied)")
                    let none = try await refusal(echo, type: "javascript", triggers: [])
                    #expect(none.contains("trigger"), "\(none)")

                    let syntax = try directory.write("(subject, payload) => {\n  return 'x' +;\n}", to: "syntax.js")
                    let syntaxError = try await refusal(syntax, type: "javascript", triggers: ["fn.bad"])
                    #expect(syntaxError.contains("SyntaxError") && syntaxError.contains("line 2"), "\(syntaxError)")

                    let garbage = try directory.write("this is not wasm", to: "garbage.wasm")
                    let invalid = try await refusal(garbage, type: "wasm", triggers: ["fn.bad"])
                    #expect(invalid.contains("invalid wasm module"), "\(invalid)")

                    // Still serving; nothing is left subscribed.
                    #expect(try await nex.ping(node: node.nodeID).runningMachines == 0)
                }
            }
        }
    }

    @Test func theKVCounterUsesHostServicesAndReplicasShareTheLoad() async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: Self.config)) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-fn-")
                    let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()
                    let counter = try Self.example("kv-counter.js", in: directory)
                    // Two replicas of one function: each message is handled by one of them (a queue group).
                    _ = try await deploy(nex, node: node.nodeID, path: counter, type: "javascript", name: "counter",
                                         triggers: ["fn.count"], issuer: issuer, sender: sender)
                    _ = try await deploy(nex, node: node.nodeID, path: counter, type: "javascript", name: "counter",
                                         triggers: ["fn.count"], issuer: issuer, sender: sender)
                    var counts: [String] = []
                    for _ in 0..<5 {
                        counts.append(try await nex.connection.request("", to: "fn.count", timeout: .seconds(10)).string)
                    }
                    #expect(counts == ["1", "2", "3", "4", "5"], "one shared bucket, one reply per call: \(counts)")
                    // The bucket is the workload's: hs_<ns>_<workload>_kv on the user's JetStream.
                    let kv = try await nex.connection.jetStream().keyValue("hs_default_counter_kv")
                    #expect(try await kv.get("count").string == "5")

                    // Exactly one reply per message, not one per replica.
                    let replies = try await nex.connection.subscribe(to: "replies.count")
                    try await nex.connection.flush()
                    for _ in 0..<4 { try await nex.connection.publish("", to: "fn.count", replyTo: "replies.count") }
                    var received = 0
                    let deadline = ContinuousClock.now + .seconds(3)
                    for await _ in replies {
                        received += 1
                        if received == 4 || ContinuousClock.now > deadline { break }
                    }
                    try await Task.sleep(for: .milliseconds(500))
                    #expect(received == 4 && replies.pendingMessages == 0)
                }
            }
        }
    }
}

extension FunctionEndToEndTests {
    /// Nex 0.2's `v8` functions call host services synchronously; deployed as `v8` they run
    /// unchanged on the real host services (a counter counts 1, 2, 3), and a node reports
    /// `v8` among its types only when configured for it.
    @Test func aNex02V8FunctionRunsUnchanged() async throws {
        let config = #"{"workload_types": ["native", "javascript", "v8"]}"#
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: config)) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let info = try await nex.info(namespace: "default", node: node.nodeID)
                    #expect(info.supportedWorkloadTypes == ["native", "javascript", "v8"])
                    let directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-v8-")
                    let issuer = try NKeyPair.generate(.account), sender = try XKeyPair.generate()
                    let counter = try Self.example("v8-kv-counter.js", in: directory)
                    _ = try await deploy(nex, node: node.nodeID, path: counter, type: "v8", name: "counter02",
                                         triggers: ["v8.count"], issuer: issuer, sender: sender)
                    var counts: [String] = []
                    for _ in 0..<3 {
                        counts.append(try await nex.connection.request("", to: "v8.count", timeout: .seconds(10)).string)
                    }
                    #expect(counts == ["1", "2", "3"])
                    let kv = try await nex.connection.jetStream().keyValue("hs_default_counter02_kv")
                    #expect(try await kv.get("count").string == "3")
                }
            }
            // The default node (no v8 in workload_types) refuses a v8 deploy, naming the type.
            try await withNode(server: server, .init(config: Self.config)) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let info = try await nex.info(namespace: "default", node: node.nodeID)
                    #expect(!(info.supportedWorkloadTypes ?? []).contains("v8"))
                    let directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-v8-")
                    let counter = try Self.example("v8-kv-counter.js", in: directory)
                    await #expect(throws: NexControlError.self) {
                        _ = try await deploy(nex, node: node.nodeID, path: counter, type: "v8", name: "counter02",
                                             triggers: ["v8.count"], issuer: try NKeyPair.generate(.account),
                                             sender: try XKeyPair.generate())
                    }
                }
            }
        }
    }
}

struct FunctionTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
