import Foundation
import NexFunctions
import NexAgentKit
import NexAgentBus
import NexWorkloads
import NexControl
import Synchronization

/// Helpers of the JavaScript tests: every wait has a deadline, and failures say what failed.
enum JS {
    /// Loads `source` as function "test", within 10 s.
    /// `caller`, when given, answers host-service calls instead of `services`.
    /// `synchronous`: Nex 0.2's `v8` semantics (host calls answer at once).
    static func load(_ source: String, timeout: Duration = .seconds(5),
                     services: JavaScriptFakeHostServices = JavaScriptFakeHostServices(),
                     caller: (any HostServiceCaller)? = nil, synchronous: Bool = false) async throws -> JavaScriptFunction {
        var settings = FunctionLimits()
        settings.timeout = timeout
        let limits = settings
        let hostServices = caller ?? services
        return try await within(.seconds(10), "load the script") {
            try await JavaScriptFunction.load(source: source, name: "test", limits: limits, hostServices: hostServices,
                                              synchronousHostCalls: synchronous)
        }
    }

    /// Loads `examples/functions/<name>` through `NexFunctionRuntime`, within 10 s.
    static func loadExample(_ name: String,
                            services: JavaScriptFakeHostServices = JavaScriptFakeHostServices()) async throws -> any FunctionRunner {
        let path = repositoryRoot.appendingPathComponent("examples/functions/\(name)").path
        let definition = FunctionDefinition(type: .javascript, workloadName: name, namespace: "default",
                                            artifactPath: path, environment: [:])
        return try await within(.seconds(10), "load \(path)") {
            try await NexFunctionRuntime().load(definition, hostServices: services)
        }
    }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The error loading `source` fails with (a FunctionError saying so when it loads).
    static func loadError(_ source: String, timeout: Duration = .seconds(5)) async -> FunctionError {
        do {
            _ = try await load(source, timeout: timeout)
            return FunctionError("the script loaded")
        } catch let error as FunctionError {
            return error
        } catch {
            return FunctionError("unexpected error: \(error)")
        }
    }

    /// Invokes `function` within 10 s.
    static func call(_ function: any FunctionRunner, _ subject: String, _ payload: [UInt8] = []) async throws -> [UInt8] {
        try await within(.seconds(10), "invoke on \(subject)") {
            try await function.invoke(subject: subject, payload: payload)
        }
    }

    /// Invokes `function` within 10 s; the reply as UTF-8 text.
    static func text(_ function: any FunctionRunner, _ subject: String, _ payload: [UInt8] = []) async throws -> String {
        String(decoding: try await call(function, subject, payload), as: UTF8.self)
    }

    /// The error an invocation fails with (a FunctionError saying so when it succeeds).
    static func invokeError(_ function: any FunctionRunner, _ subject: String) async -> FunctionError {
        do {
            let reply = try await call(function, subject)
            return FunctionError("the invocation succeeded with \(String(decoding: reply, as: UTF8.self))")
        } catch let error as FunctionError {
            return error
        } catch {
            return FunctionError("unexpected error: \(error)")
        }
    }

    /// Writes a fixture file.
    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// Thrown by ``within(_:_:_:)`` when the deadline passes first.
    struct DeadlineExceeded: Error, CustomStringConvertible {
        var what: String
        var limit: Duration
        var description: String { "\(what) did not finish within \(limit)" }
    }

    /// Runs `body`, failing with ``DeadlineExceeded`` after `limit` even if `body` never returns.
    static func within<T: Sendable>(_ limit: Duration, _ what: String,
                                    _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let slot = Slot<T>()
        return try await withCheckedThrowingContinuation { continuation in
            slot.set(continuation)
            Task {
                do { slot.resume(with: .success(try await body())) } catch { slot.resume(with: .failure(error)) }
            }
            Task {
                try? await Task.sleep(for: limit)
                slot.resume(with: .failure(DeadlineExceeded(what: what, limit: limit)))
            }
        }
    }

    /// A continuation resumed by whichever of two tasks gets there first.
    final class Slot<T: Sendable>: Sendable {
        private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)
        func set(_ value: CheckedContinuation<T, any Error>) { continuation.withLock { $0 = value } }
        func resume(with result: Result<T, any Error>) { continuation.withLock { $0.take() }?.resume(with: result) }
    }
}

/// An in-memory stand-in for the node's host services, answering as Nex 0.2's do (digest §5):
/// this tests the JavaScript bridge, not NATS. Records every call.
final class JavaScriptFakeHostServices: HostServiceCaller {
    struct Call: Sendable, Equatable {
        var service: String
        var method: String
        var headers: [String: String]
        var body: [UInt8]
    }

    private struct State {
        var kv: [String: [UInt8]] = [:]
        var revision: UInt64 = 0
        var objects: [String: [UInt8]] = [:]
        var calls: [Call] = []
    }

    private let state = Mutex(State())
    private let delay: Duration?

    init(delay: Duration? = nil) { self.delay = delay }

    var calls: [Call] { state.withLock { $0.calls } }
    func value(of key: String) -> [UInt8]? { state.withLock { $0.kv[key] } }

    func call(service: String, method: String, headers: [String: String], body: [UInt8]) async throws -> HostServiceReply {
        if let delay { try await Task.sleep(for: delay) }
        return state.withLock { state in
            state.calls.append(Call(service: service, method: method, headers: headers, body: body))
            return Self.answer(service, method, headers, body, &state)
        }
    }

    private static func answer(_ service: String, _ method: String, _ headers: [String: String], _ body: [UInt8],
                               _ state: inout State) -> HostServiceReply {
        func ok(_ body: [UInt8]) -> HostServiceReply { HostServiceReply(code: 200, message: "OK", body: body) }
        func ok(json: String) -> HostServiceReply { ok(Array(json.utf8)) }
        func jsonString(_ text: String) -> String {
            "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        switch (service, method) {
        case ("kv", "get"):
            guard let key = headers["x-keyvalue-key"] else { return HostServiceReply(code: 400, message: "no key") }
            guard let value = state.kv[key] else { return HostServiceReply(code: 404, message: "no such key: \(key)") }
            return ok(value)
        case ("kv", "set"):
            guard let key = headers["x-keyvalue-key"] else { return HostServiceReply(code: 400, message: "no key") }
            state.kv[key] = body
            state.revision += 1
            return ok(json: #"{"revision":\#(state.revision),"success":true}"#)
        case ("kv", "delete"):
            guard let key = headers["x-keyvalue-key"] else { return HostServiceReply(code: 400, message: "no key") }
            state.kv[key] = nil
            return ok(json: #"{"success":true}"#)
        case ("kv", "keys"):
            return ok(json: "[" + state.kv.keys.sorted().map(jsonString).joined(separator: ",") + "]")
        case ("objectstore", "get"):
            guard let name = headers["x-object-name"] else { return HostServiceReply(code: 400, message: "no name") }
            guard let value = state.objects[name] else { return HostServiceReply(code: 404, message: "no such object: \(name)") }
            return ok(value)
        case ("objectstore", "put"):
            guard let name = headers["x-object-name"] else { return HostServiceReply(code: 400, message: "no name") }
            state.objects[name] = body
            return ok(json: #"{"name":\#(jsonString(name)),"size":\#(body.count)}"#)
        case ("objectstore", "delete"):
            guard let name = headers["x-object-name"] else { return HostServiceReply(code: 400, message: "no name") }
            state.objects[name] = nil
            return ok(json: #"{"success":true}"#)
        case ("objectstore", "list"):
            let infos = state.objects.keys.sorted().map { #"{"name":\#(jsonString($0)),"size":\#(state.objects[$0]!.count)}"# }
            return ok(json: "[" + infos.joined(separator: ",") + "]")
        case ("messaging", "publish"):
            return ok(json: #"{"success":true}"#)
        case ("messaging", "request"):
            return ok(Array("reply to \(headers["x-subject"] ?? "?"): ".utf8) + body)
        case ("messaging", "requestMany"):
            return HostServiceReply(code: 501, message: "messaging requestMany is not supported")
        case ("http", _):
            let url = headers["x-http-url"] ?? ""
            if url.contains("unreachable") {
                return ok(json: #"{"status":0,"headers":{},"body":"","error":"connection refused"}"#)
            }
            if url.contains("binary") {
                return ok(json: #"{"status":200,"headers":{},"body":"AAH/","body_encoding":"base64"}"#)
            }
            let sent = String(decoding: body, as: UTF8.self)
            let extra = headers.keys.filter { $0.hasPrefix("x-http-header-") }.sorted().joined(separator: ",")
            let echoed = jsonString("\(method) \(url) [\(sent)] \(extra)")
            return ok(json: #"{"status":201,"headers":{"Content-Type":["text/plain"]},"body":\#(echoed)}"#)
        default:
            return HostServiceReply(code: 404, message: "unknown service \(service).\(method)")
        }
    }
}
