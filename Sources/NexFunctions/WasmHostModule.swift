import Foundation
import NexAgentKit
import NexAgentBus
import WasmKit

/// The `nex` import module: host services (`kv`, `objectstore`, `messaging`, `http`) for
/// wasm guests, over ``HostServiceCaller``.
///
/// ```text
/// (import "nex" "call" (func (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
///     ;; service_ptr service_len method_ptr method_len headers_ptr headers_len body_ptr body_len
/// (import "nex" "result_code" (func (result i32)))
/// (import "nex" "result_len" (func (result i32)))
/// (import "nex" "result_read" (func (param i32 i32) (result i32)))          ;; ptr len
/// (import "nex" "result_message_len" (func (result i32)))
/// (import "nex" "result_message_read" (func (param i32 i32) (result i32)))  ;; ptr len
/// ```
///
/// `call` is synchronous. Strings are UTF-8; the headers are a JSON object of string to
/// string (`headers_len` 0: none), e.g. `{"x-keyvalue-key":"count"}`. It returns the host
/// service's code (`x-nex-hs-code`: 200, 400, 404, 500, ...) or a negative error:
/// ``efault`` (-1) a pointer and length outside the guest memory (or no exported `memory`),
/// ``einval`` (-2) a service or method that is empty or not UTF-8, or headers that are not a
/// JSON object of strings, ``eunavailable`` (-3) the call got no answer (transport error;
/// the reason is the result message).
///
/// The result of the last `call` stays readable until the next one: `result_code` repeats
/// the return value of `call` (0 before any call), `result_len` is the body's length,
/// `result_read` copies `min(len, result_len)` bytes of the body to `ptr` and returns how
/// many (-1 when the range is outside memory); `result_message_len`/`result_message_read` do
/// the same for the message (`x-nex-hs-msg`, or the reason of a -3).
enum WasmHostModule {
    /// The import module's name.
    static let moduleName = "nex"

    /// A pointer/length outside the guest memory, or no exported `memory`.
    static let efault: Int32 = -1
    /// An argument that is not what the call expects (empty or non-UTF-8 names, bad headers).
    static let einval: Int32 = -2
    /// The host service call got no answer.
    static let eunavailable: Int32 = -3

    /// The names this module provides.
    static let functionNames: Set<String> = [
        "call", "result_code", "result_len", "result_read", "result_message_len", "result_message_read",
    ]

    /// Defines the functions named in `names` (those the module imports) for one call.
    static func define(_ names: [String], into imports: inout Imports, store: Store, invocation: WasmInvocation) {
        for name in names {
            guard let function = makeFunction(name, store: store, invocation: invocation) else { continue }
            imports.define(module: moduleName, name: name, function)
        }
    }

    private static func makeFunction(_ name: String, store: Store, invocation: WasmInvocation) -> Function? {
        switch name {
        case "call":
            return Function(store: store, parameters: Array(repeating: .i32, count: 8), results: [.i32]) {
                caller, arguments in
                [.i32(UInt32(bitPattern: try call(caller, arguments, invocation)))]
            }
        case "result_code":
            return Function(store: store, parameters: [], results: [.i32]) { _, _ in
                [.i32(UInt32(bitPattern: invocation.lastResult.code))]
            }
        case "result_len":
            return Function(store: store, parameters: [], results: [.i32]) { _, _ in
                [.i32(UInt32(invocation.lastResult.body.count))]
            }
        case "result_read":
            return Function(store: store, parameters: [.i32, .i32], results: [.i32]) { caller, arguments in
                let copied = copy(invocation.lastResult.body, to: caller, arguments, invocation)
                return [.i32(UInt32(bitPattern: copied))]
            }
        case "result_message_len":
            return Function(store: store, parameters: [], results: [.i32]) { _, _ in
                [.i32(UInt32(invocation.lastResult.message.count))]
            }
        case "result_message_read":
            return Function(store: store, parameters: [.i32, .i32], results: [.i32]) { caller, arguments in
                let copied = copy(invocation.lastResult.message, to: caller, arguments, invocation)
                return [.i32(UInt32(bitPattern: copied))]
            }
        default:
            return nil
        }
    }

    /// `nex.call`; returns what the guest sees. Throws only when the invocation's deadline
    /// passed (the call ends as timed out).
    private static func call(_ caller: borrowing Caller, _ arguments: [Value], _ invocation: WasmInvocation) throws -> Int32 {
        guard let memory = invocation.guestMemory(caller) else { return record(efault, "no exported memory", invocation) }
        guard let service = readBytes(memory, arguments[0], arguments[1]),
            let method = readBytes(memory, arguments[2], arguments[3]),
            let headerBytes = readBytes(memory, arguments[4], arguments[5]),
            let body = readBytes(memory, arguments[6], arguments[7])
        else {
            return record(efault, "an argument lies outside the guest memory", invocation)
        }
        guard let serviceName = String(validating: service, as: UTF8.self), !serviceName.isEmpty,
            let methodName = String(validating: method, as: UTF8.self), !methodName.isEmpty
        else {
            return record(einval, "service and method must be non-empty UTF-8", invocation)
        }
        var headers: [String: String] = [:]
        if !headerBytes.isEmpty {
            guard let decoded = try? JSONDecoder().decode([String: String].self, from: Data(headerBytes)) else {
                return record(einval, "headers must be a JSON object of strings", invocation)
            }
            headers = decoded
        }
        // The invocation's trace context, never one the guest wrote (in any letter case).
        headers = headers.filter { $0.key.lowercased() != "traceparent" }
        headers["traceparent"] = invocation.traceParent
        let outcome: Result<HostServiceReply, any Error>
        do {
            outcome = try BlockingHostCall.perform(
                invocation.hostServices, service: serviceName, method: methodName, headers: headers, body: body,
                deadline: invocation.deadline)
        } catch {
            invocation.deadlineExceeded = true
            throw error
        }
        switch outcome {
        case .success(let reply):
            let code = Int32(clamping: reply.code)
            invocation.lastResult = WasmInvocation.HostResult(code: code, body: reply.body, message: Array(reply.message.utf8))
            return code
        case .failure(let error):
            return record(eunavailable, "\(serviceName).\(methodName) failed: \(error)", invocation)
        }
    }

    private static func record(_ code: Int32, _ message: String, _ invocation: WasmInvocation) -> Int32 {
        invocation.lastResult = WasmInvocation.HostResult(code: code, body: [], message: Array(message.utf8))
        return code
    }

    /// Copies guest bytes `[ptr, ptr+len)`, or `nil` when the range is outside memory.
    private static func readBytes(_ memory: Memory, _ pointer: Value, _ length: Value) -> [UInt8]? {
        guard case .i32(let start) = pointer, case .i32(let count) = length else { return nil }
        guard count > 0 else { return [] }
        guard UInt64(start) + UInt64(count) <= UInt64(memory.byteCount) else { return nil }
        return memory.withUnsafeBufferPointer(offset: UInt(start), count: Int(count)) { Array($0) }
    }

    /// `result_read` and `result_message_read`: copies `min(len, bytes.count)` bytes to `ptr`.
    private static func copy(_ bytes: [UInt8], to caller: borrowing Caller, _ arguments: [Value], _ invocation: WasmInvocation) -> Int32 {
        guard let memory = invocation.guestMemory(caller),
            case .i32(let start) = arguments[0], case .i32(let length) = arguments[1]
        else { return efault }
        let count = min(Int(length), bytes.count)
        guard count > 0 else { return 0 }
        guard UInt64(start) + UInt64(count) <= UInt64(memory.byteCount) else { return efault }
        memory.withUnsafeMutableBufferPointer(offset: UInt(start), count: count) { destination in
            bytes.withUnsafeBytes { destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        }
        return Int32(count)
    }
}
