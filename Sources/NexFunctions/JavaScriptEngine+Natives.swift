import CJavaScriptCore
import FoundationEssentials
import NexAgentKit
import NexAgentBus

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The native functions the host-services prelude is given (``JavaScriptHostServices``).
extension JavaScriptEngine {
    /// `{call, callSync, encode, decode, base64, fulfilled, rejected, log}` as native functions.
    func makeNatives(_ context: JSContextRef) -> JSObjectRef {
        let natives = JSObjectMake(context, nil, nil)!
        let functions: [(String, JSObjectCallAsFunctionCallback)] = [
            ("call", { context, _, _, count, arguments, exception in
                native(context, count, arguments, exception) { engine, context, arguments in
                    try engine.hostCall(context, arguments)
                }
            }),
            ("callSync", { context, _, _, count, arguments, exception in
                native(context, count, arguments, exception) { engine, context, arguments in
                    try engine.hostCallSync(context, arguments, exception: exception)
                }
            }),
            ("encode", { context, _, _, count, arguments, exception in
                native(context, count, arguments, exception) { _, context, arguments in
                    let text = (arguments.first ?? nil).flatMap { JavaScriptValue.string(context, $0) } ?? ""
                    return JavaScriptValue.make(context, bytes: Array(text.utf8))
                }
            }),
            ("decode", { context, _, _, count, arguments, exception in
                native(context, count, arguments, exception) { _, context, arguments in
                    guard let value = arguments.first ?? nil, let bytes = JavaScriptValue.bytes(context, value) else {
                        throw NativeError("decode: the argument must be a Uint8Array or an ArrayBuffer")
                    }
                    return JavaScriptValue.make(context, string: String(decoding: bytes, as: UTF8.self))
                }
            }),
            ("base64", { context, _, _, count, arguments, exception in
                native(context, count, arguments, exception) { _, context, arguments in
                    let text = (arguments.first ?? nil).flatMap { JavaScriptValue.string(context, $0) } ?? ""
                    guard let data = Data(base64Encoded: text) else { throw NativeError("base64: not valid base64") }
                    return JavaScriptValue.make(context, bytes: Array(data))
                }
            }),
            ("fulfilled", { context, _, _, count, arguments, exception in
                native(context, count, arguments, exception) { engine, context, arguments in
                    let id = engine.invocationID(context, arguments)
                    engine.finish(id, engine.reply(from: arguments.count > 1 ? arguments[1] : nil))
                    return nil
                }
            }),
            ("rejected", { context, _, _, count, arguments, exception in
                native(context, count, arguments, exception) { engine, context, arguments in
                    let id = engine.invocationID(context, arguments)
                    let reason = arguments.count > 1 ? arguments[1].map(engine.describe) : nil
                    engine.finish(id, .failure(FunctionError("function \(engine.name) failed: \(reason ?? "rejected")")))
                    return nil
                }
            }),
            ("log", { context, _, _, count, arguments, exception in
                native(context, count, arguments, exception) { engine, context, arguments in
                    let texts = arguments.map { $0.flatMap { JavaScriptValue.string(context, $0) } ?? "" }
                    var line = "[\(engine.name)] \(texts.first ?? "info"): \(texts.dropFirst().joined(separator: " "))\n"
                    _ = line.withUTF8 { write(STDERR_FILENO, $0.baseAddress, $0.count) }
                    return nil
                }
            }),
        ]
        for (name, callback) in functions {
            JavaScriptValue.set(context, natives, name, JavaScriptValue.makeFunction(context, name, callback))
        }
        return natives
    }

    /// A host call's service, method, headers (an object of strings) and body from JavaScript.
    private func hostCallArguments(_ context: JSContextRef, _ arguments: [JSValueRef?]) throws(NativeError)
        -> (service: String, method: String, headers: [String: String], body: [UInt8])
    {
        func argument(_ index: Int) -> JSValueRef? { index < arguments.count ? arguments[index] : nil }
        guard let service = argument(0).flatMap({ JavaScriptValue.string(context, $0) }),
              let method = argument(1).flatMap({ JavaScriptValue.string(context, $0) })
        else { throw NativeError("call: service and method must be strings") }
        var headers: [String: String] = [:]
        if let value = argument(2), JSValueIsObject(context, value), let object = JSValueToObject(context, value, nil) {
            let names = JSObjectCopyPropertyNames(context, object)!
            defer { JSPropertyNameArrayRelease(names) }
            for index in 0..<JSPropertyNameArrayGetCount(names) {
                let name = JSPropertyNameArrayGetNameAtIndex(names, index)!
                if let header = JSObjectGetProperty(context, object, name, nil), let text = JavaScriptValue.string(context, header) {
                    headers[JavaScriptValue.string(name)] = text
                }
            }
        }
        // The invocation's trace context, never one the script wrote.
        headers["traceparent"] = traceParents[currentInvocation]
        return (service, method, headers, argument(3).flatMap { JavaScriptValue.bytes(context, $0) } ?? [])
    }

    /// `callSync(service, method, headers, body)` (`v8` functions): blocks this thread until
    /// the reply, returned as a `Uint8Array`; a failure is thrown as an `Error` with `code`.
    /// The wait ends at the invocation's deadline ("timed out").
    fileprivate func hostCallSync(_ context: JSContextRef, _ arguments: [JSValueRef?],
                                  exception: UnsafeMutablePointer<JSValueRef?>?) throws(NativeError) -> JSValueRef? {
        let (service, method, headers, body) = try hostCallArguments(context, arguments)
        guard currentInvocation != 0, currentDeadline != .max else {
            throw NativeError("\(service).\(method): host services answer only while the function runs for a message")
        }
        guard WasmConditionLock.now() < currentDeadline else {
            synchronousCallTimedOut = true
            throw NativeError("\(service).\(method) timed out: function \(name) ran out of time")
        }
        let outcome: Result<HostServiceReply, any Error>
        do {
            outcome = try BlockingHostCall.perform(hostServices, service: service, method: method, headers: headers,
                                                   body: body, deadline: currentDeadline)
        } catch {
            synchronousCallTimedOut = true
            throw NativeError("\(service).\(method) timed out: function \(name) ran out of time")
        }
        let (fulfilled, value) = hostCallValue(context, service: service, method: method, outcome: outcome)
        guard fulfilled else {
            exception?.pointee = value
            return nil
        }
        return value
    }

    /// `call(service, method, headers, body)`: starts a host-service call on a Swift task and
    /// returns a promise that ``settleHostCall(_:service:method:outcome:)`` settles on this thread.
    fileprivate func hostCall(_ context: JSContextRef, _ arguments: [JSValueRef?]) throws(NativeError) -> JSValueRef? {
        let (service, method, headers, body) = try hostCallArguments(context, arguments)

        var resolve: JSObjectRef?
        var reject: JSObjectRef?
        var exception: JSValueRef?
        guard let promise = JSObjectMakeDeferredPromise(context, &resolve, &reject, &exception),
              exception == nil, let resolve, let reject
        else { throw NativeError("\(service).\(method): cannot make a promise") }
        JSValueProtect(context, resolve)
        JSValueProtect(context, reject)
        let callID = nextID
        nextID &+= 1
        hostCalls[callID] = HostCall(resolve: resolve, reject: reject, owner: currentInvocation)

        let caller = hostServices
        Task { [thread, self] in
            let outcome: Result<HostServiceReply, any Error>
            do {
                outcome = .success(try await caller.call(service: service, method: method, headers: headers, body: body))
            } catch {
                outcome = .failure(error)
            }
            thread.post { self.settleHostCall(callID, service: service, method: method, outcome: outcome) }
        }
        return promise
    }

    /// The invocation id passed as the first argument of `fulfilled` and `rejected`.
    fileprivate func invocationID(_ context: JSContextRef, _ arguments: [JSValueRef?]) -> UInt64 {
        guard let first = arguments.first ?? nil else { return 0 }
        let number = JSValueToNumber(context, first, nil)
        return number.isFinite && number > 0 ? UInt64(number) : 0
    }
}

/// A native function's failure, thrown into JavaScript as an `Error` with this message.
private struct NativeError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// Runs a native function's body with its engine; a thrown ``NativeError`` becomes a
/// JavaScript exception, and `undefined` stands in for no result.
private func native(
    _ context: JSContextRef?, _ count: Int, _ arguments: UnsafePointer<JSValueRef?>?,
    _ exception: UnsafeMutablePointer<JSValueRef?>?,
    _ body: (JavaScriptEngine, JSContextRef, [JSValueRef?]) throws -> JSValueRef?
) -> JSValueRef? {
    guard let context else { return nil }
    guard let engine = JavaScriptEngine.from(context) else { return JSValueMakeUndefined(context) }
    let values = arguments.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    do {
        return try body(engine, context, values) ?? JSValueMakeUndefined(context)
    } catch {
        exception?.pointee = JavaScriptValue.makeError(context, (error as? NativeError)?.message ?? "\(error)")
        return JSValueMakeUndefined(context)
    }
}
