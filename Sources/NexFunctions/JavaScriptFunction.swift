import FoundationEssentials
import NexAgentKit
import NexWorkloads
import NexControl

/// A JavaScript function workload running on JavaScriptCore.
///
/// The script is evaluated once, at load, and must evaluate to a function
/// `(subject, payload) => result`: `subject` is the trigger subject (a string), `payload` the
/// message body (a `Uint8Array`). The result is the reply: a `Uint8Array` (any typed array)
/// or `ArrayBuffer` as its bytes, a string as UTF-8, `undefined` as an empty reply, anything
/// else as its `JSON.stringify`. A returned promise is awaited.
///
/// The script sees a `hostServices` global (`kv`, `objectStore`, `messaging`, `http`, whose
/// methods go through the ``HostServiceCaller`` given at load and return promises, or, for
/// the `v8` type, their results at once as in Nex 0.2), a
/// `console` whose output goes to standard error, and UTF-8 `TextEncoder`/`TextDecoder`.
///
/// One context per function, on a thread of its own: invocations run one at a time on that
/// thread (JavaScript never runs on a Swift concurrency thread); while one awaits a host
/// service, others run. Because the context is kept between calls, **state kept in globals
/// (or in the function's closure) persists from one invocation to the next** — Nex 0.2 made
/// a new V8 context per call; a fresh JavaScriptCore context per call costs more than the
/// whole call budget, so we keep one (see `docs/functions.md`).
///
/// Each invocation is limited to ``FunctionLimits/timeout``: JavaScriptCore's watchdog stops a
/// script that computes for that long, and an invocation whose promise has not settled by
/// then fails; either way the invocation fails with "function <name> timed out after 5 s"
/// and the function stays usable.
public final class JavaScriptFunction: FunctionRunner {
    /// The workload name the function was loaded as; error messages name it.
    public let name: String
    private let thread: JavaScriptThread
    private let engine: JavaScriptEngine

    private init(name: String, thread: JavaScriptThread, engine: JavaScriptEngine) {
        self.name = name
        self.thread = thread
        self.engine = engine
    }

    deinit {
        thread.post { [engine] in engine.close() }
        thread.stop()
    }

    /// Loads the script at `function.artifactPath`. Throws a ``FunctionError`` (the deploy is
    /// refused with its message) when the file cannot be read, is larger than
    /// ``FunctionLimits/scriptBytes``, does not compile (the message has the `SyntaxError` and
    /// its line), throws, or does not evaluate to a function.
    public static func load(_ function: FunctionDefinition, hostServices: any HostServiceCaller) async throws(FunctionError)
        -> JavaScriptFunction
    {
        let url = URL(fileURLWithPath: function.artifactPath)
        if let size = try? FileManager.default.attributesOfItem(atPath: function.artifactPath)[.size] as? Int,
           size > function.limits.scriptBytes
        {
            throw tooLarge(name: function.workloadName, size: size, limit: function.limits.scriptBytes)
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw FunctionError("cannot read the script of function \(function.workloadName) at \(function.artifactPath): \(error)")
        }
        return try await load(source: String(decoding: data, as: UTF8.self), name: function.workloadName,
                              sourceURL: url.lastPathComponent, limits: function.limits, hostServices: hostServices,
                              synchronousHostCalls: function.type == .v8)
    }

    /// Loads a script given as text; `sourceURL` is the name stack traces show for it. With
    /// `synchronousHostCalls` (the `v8` type), `hostServices` methods return their results
    /// instead of promises, as in Nex 0.2. Throws like ``load(_:hostServices:)``.
    public static func load(source: String, name: String, sourceURL: String = "function.js",
                            limits: FunctionLimits = FunctionLimits(),
                            hostServices: any HostServiceCaller,
                            synchronousHostCalls: Bool = false) async throws(FunctionError) -> JavaScriptFunction
    {
        let size = source.utf8.count
        guard size <= limits.scriptBytes else { throw tooLarge(name: name, size: size, limit: limits.scriptBytes) }
        let thread = JavaScriptThread(name: "js-\(name)")
        let engine = JavaScriptEngine(name: name, limits: limits, hostServices: hostServices,
                                      synchronousHostCalls: synchronousHostCalls, thread: thread)
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, FunctionError>, Never>) in
            thread.post {
                do throws(FunctionError) {
                    try engine.load(source: source, sourceURL: sourceURL)
                    continuation.resume(returning: .success(()))
                } catch {
                    engine.close()
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        if case .failure(let error) = outcome {
            thread.stop()
            throw error
        }
        return JavaScriptFunction(name: name, thread: thread, engine: engine)
    }

    /// Runs the function for one message. Throws a ``FunctionError`` when the function throws
    /// or rejects ("function <name> failed: Error: message (line N)"), times out, or returns a
    /// value that cannot be converted to JSON. Cancelling the caller does not stop the call.
    public func invoke(subject: String, payload: [UInt8], traceParent: String?) async throws(FunctionError) -> [UInt8] {
        // The time starts now: a call that waits behind others (a v8 function's host calls
        // hold its thread) is not given a fresh 5 s when its turn comes.
        let deadline = BlockingHostCall.deadline(after: engine.limits.timeout)
        let result = await withCheckedContinuation { (continuation: JavaScriptEngine.Completion) in
            let engine = self.engine
            let posted = thread.post {
                engine.invoke(subject: subject, payload: payload, traceParent: traceParent, deadline: deadline,
                              completion: continuation)
            }
            if !posted {
                continuation.resume(returning: .failure(FunctionError("function \(name) is unloaded")))
            }
        }
        return try result.get()
    }

    private static func tooLarge(name: String, size: Int, limit: Int) -> FunctionError {
        FunctionError("script of function \(name) is \(size) bytes, over the limit of \(limit) bytes")
    }
}
