import Foundation
import NATSTestSupport
import NexFunctions
import NexAgentKit
import NexAgentBus
import NexWorkloads
import NexControl
import Synchronization
import Testing

/// An in-memory `kv` host service (get/set by `x-keyvalue-key`), recording the calls made.
final class MemoryKeyValue: HostServiceCaller {
    struct Call: Equatable {
        var service: String
        var method: String
        var headers: [String: String]
        var body: [UInt8]
    }

    private let state = Mutex<(values: [String: [UInt8]], calls: [Call])>(([:], []))

    var calls: [Call] { state.withLock { $0.calls } }

    func call(service: String, method: String, headers: [String: String], body: [UInt8]) async throws -> HostServiceReply {
        state.withLock { state in
            state.calls.append(Call(service: service, method: method, headers: headers, body: body))
            guard service == "kv" else { return HostServiceReply(code: 404, message: "no such service: \(service)") }
            guard let key = headers["x-keyvalue-key"] else { return HostServiceReply(code: 400, message: "x-keyvalue-key is missing") }
            switch method {
            case "get":
                guard let value = state.values[key] else { return HostServiceReply(code: 404, message: "no such key: \(key)") }
                return HostServiceReply(code: 200, message: "OK", body: value)
            case "set":
                state.values[key] = body
                return HostServiceReply(code: 200, message: "OK", body: Array(#"{"revision":1,"success":true}"#.utf8))
            default:
                return HostServiceReply(code: 400, message: "unknown method \(method)")
            }
        }
    }
}

/// A caller with a fixed answer (or error), recording what it was asked.
final class ScriptedHostServices: HostServiceCaller {
    struct Broken: Error, CustomStringConvertible { var description: String { "connection refused" } }

    let reply: HostServiceReply?
    let delay: Duration
    private let asked = Mutex<[[String: String]]>([])
    var headersSeen: [[String: String]] { asked.withLock { $0 } }

    init(reply: HostServiceReply?, delay: Duration = .zero) {
        self.reply = reply
        self.delay = delay
    }

    func call(service: String, method: String, headers: [String: String], body: [UInt8]) async throws -> HostServiceReply {
        asked.withLock { $0.append(headers) }
        if delay > .zero { try await Task.sleep(for: delay) }
        guard let reply else { throw Broken() }
        return reply
    }
}

@Suite(.enabled(if: WasmTestKit.available, WasmTestKit.skipReason), .timeLimit(.minutes(2)))
struct WasmHostModuleTests {
    typealias Kit = WasmTestKit

    /// Calls kv.get with {"x-keyvalue-key":"count"} and replies
    /// `<call's return>:<result_code>:<message>:<body>`. Input "b": headers outside memory;
    /// "j": headers that are not JSON.
    static let probe = """
        (module
          \(Kit.fdReadImport)
          \(Kit.fdWriteImport)
          (import "nex" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
          (import "nex" "result_code" (func $result_code (result i32)))
          (import "nex" "result_len" (func $result_len (result i32)))
          (import "nex" "result_read" (func $result_read (param i32 i32) (result i32)))
          (import "nex" "result_message_len" (func $result_message_len (result i32)))
          (import "nex" "result_message_read" (func $result_message_read (param i32 i32) (result i32)))
          \(Kit.helpers)
          \(Kit.firstByte)
          (data (i32.const 100) "kv")
          (data (i32.const 110) "get")
          (data (i32.const 120) "{\\"x-keyvalue-key\\":\\"count\\"}")
          (data (i32.const 150) "nope")
          (data (i32.const 160) ":")
          (func $sep (call $write (i32.const 1) (i32.const 160) (i32.const 1)))
          (func (export "_start") (local $c i32) (local $headers i32) (local $length i32) (local $n i32)
            (local.set $c (call $first_byte))
            (local.set $headers (i32.const 120))
            (local.set $length (i32.const 26))
            (if (i32.eq (local.get $c) (i32.const 98))
              (then (local.set $headers (i32.const 0xFFFFFF00)) (local.set $length (i32.const 1000))))
            (if (i32.eq (local.get $c) (i32.const 106))
              (then (local.set $headers (i32.const 150)) (local.set $length (i32.const 4))))
            (call $write_int (i32.const 1)
              (call $call (i32.const 100) (i32.const 2) (i32.const 110) (i32.const 3)
                          (local.get $headers) (local.get $length) (i32.const 0) (i32.const 0)))
            (call $sep)
            (call $write_int (i32.const 1) (call $result_code))
            (call $sep)
            (local.set $n (call $result_message_read (i32.const 1024) (call $result_message_len)))
            (call $write (i32.const 1) (i32.const 1024) (local.get $n))
            (call $sep)
            (local.set $n (call $result_read (i32.const 8192) (call $result_len)))
            (call $write (i32.const 1) (i32.const 8192) (local.get $n))))
        """

    private func probe(_ caller: any HostServiceCaller, input: String = "", timeout: Duration = .seconds(5)) async throws -> String {
        let directory = try TemporaryDirectory(prefix: "wasm-probe-")
        let function = try await Kit.function(
            Self.probe, named: "probe", in: directory, limits: Kit.limits(timeout: timeout), hostServices: caller)
        return String(decoding: try await function.invoke(subject: "s", payload: Array(input.utf8)), as: UTF8.self)
    }

    @Test func aSuccessfulCallHandsTheBodyToTheGuest() async throws {
        let caller = ScriptedHostServices(reply: HostServiceReply(code: 200, message: "OK", body: Array("abc".utf8)))
        #expect(try await probe(caller) == "200:200:OK:abc")
        #expect(caller.headersSeen == [["x-keyvalue-key": "count"]])
    }

    @Test func aHostErrorCodeReachesTheGuest() async throws {
        let caller = ScriptedHostServices(reply: HostServiceReply(code: 404, message: "no such key"))
        #expect(try await probe(caller) == "404:404:no such key:")
    }

    @Test func aFailedCallIsMinusThreeWithTheReason() async throws {
        let reply = try await probe(ScriptedHostServices(reply: nil))
        #expect(reply == "-3:-3:kv.get failed: connection refused:")
    }

    @Test func badArgumentsAreNegativeCodes() async throws {
        let caller = ScriptedHostServices(reply: HostServiceReply(code: 200, message: "OK"))
        #expect(try await probe(caller, input: "b").hasPrefix("-1:-1:"))
        #expect(try await probe(caller, input: "j").hasPrefix("-2:-2:headers must be a JSON object of strings"))
        #expect(caller.headersSeen.isEmpty, "a call with bad arguments reached the host service")
    }

    @Test func aHostCallPastTheDeadlineTimesTheInvocationOut() async throws {
        let caller = ScriptedHostServices(reply: HostServiceReply(code: 200, message: "OK"), delay: .seconds(30))
        let started = ContinuousClock.now
        do {
            _ = try await probe(caller, timeout: .milliseconds(300))
            Issue.record("a call waiting 30 s on a host service beat a 300 ms timeout")
        } catch let error as FunctionError {
            #expect(error.message == "timed out after 300 ms")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func theKVCounterExampleCounts() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-kv-")
        let path = try Kit.compile(
            Kit.repositoryRoot.appendingPathComponent("examples/functions/kv-counter.wat").path,
            to: directory.appending("kv-counter.wasm"))
        let kv = MemoryKeyValue()
        let counter = try await Kit.load(path, name: "kv-counter", hostServices: kv)
        for expected in 1...3 {
            let reply = try await counter.invoke(subject: "count", payload: [])
            #expect(String(decoding: reply, as: UTF8.self) == "\(expected)")
        }
        let calls = kv.calls
        #expect(calls.count == 6)
        #expect(calls.map(\.method) == ["get", "set", "get", "set", "get", "set"])
        #expect(calls.allSatisfy { $0.service == "kv" && $0.headers == ["x-keyvalue-key": "count"] })
        #expect(calls.last?.body == Array("3".utf8))

        // A failing host service: the example exits with code 1 and the host's message.
        let broken = try await Kit.load(path, name: "kv-counter", hostServices: ScriptedHostServices(
            reply: HostServiceReply(code: 500, message: "bucket unavailable")))
        let error = await Kit.failure(of: broken)
        #expect(error?.message == "exited with code 1; stderr: bucket unavailable")
    }
}
