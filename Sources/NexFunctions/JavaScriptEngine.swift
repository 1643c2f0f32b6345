import CJavaScriptCore
import NexAgentKit
import NexAgentBus
import NexWorkloads
import NexControl

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One JavaScriptCore context group and global context holding a compiled function, its
/// in-flight invocations and its in-flight host-service calls.
///
/// Confined to its ``JavaScriptThread``: every method runs there (the class is
/// `@unchecked Sendable` only so that jobs posted to that thread can capture it).
///
/// Time is limited twice: JavaScriptCore's watchdog (`JSContextGroupSetExecutionTimeLimit`,
/// CPU time of each entry into the VM, with polling traps so that optimized code is stopped
/// too) stops a runaway loop, and a wall-clock deadline per invocation fails a call whose
/// promise has not settled in time (checked on the thread between entries).
final class JavaScriptEngine: @unchecked Sendable {
    typealias Completion = CheckedContinuation<Result<[UInt8], FunctionError>, Never>

    /// A host-service call in flight: the promise's functions, kept alive with `JSValueProtect`.
    struct HostCall {
        var resolve: JSObjectRef
        var reject: JSObjectRef
        /// The invocation whose code made the call (0 when none, e.g. at load).
        var owner: UInt64
    }

    let name: String
    let limits: FunctionLimits
    let hostServices: any HostServiceCaller
    /// Nex 0.2's `v8` semantics: host services answer synchronously (``hostCallSync``).
    let synchronousHostCalls: Bool
    let thread: JavaScriptThread

    private(set) var context: JSGlobalContextRef?
    private var group: JSContextGroupRef?
    private var function: JSObjectRef?
    private var runner: JSObjectRef?
    private var pendingMarker: JSObjectRef?
    private var sourceURL = ""
    private var invocations: [UInt64: Completion] = [:]
    /// Deadlines of invocations waiting for a promise, in start order (all have the same timeout).
    private var deadlines: [(id: UInt64, at: ContinuousClock.Instant)] = []
    private var deadlinesHead = 0
    var hostCalls: [UInt64: HostCall] = [:]
    /// The `traceparent` of invocations under way that have one: their host calls carry it.
    var traceParents: [UInt64: String] = [:]
    /// The invocation whose JavaScript is running now (0 when none).
    var currentInvocation: UInt64 = 0
    /// When the running invocation's time is up (``WasmConditionLock/now()`` nanoseconds):
    /// a synchronous host call waits no longer. `.max` outside an invocation: then no
    /// synchronous host call is made at all (not at load, not from a result's `toJSON`).
    var currentDeadline: UInt64 = .max
    /// A synchronous host call of the running invocation ran out of its time: the invocation
    /// fails even if the script caught the error.
    var synchronousCallTimedOut = false
    var nextID: UInt64 = 1
    /// Set by the watchdog's callback when it stops the running script.
    var watchdogFired = false
    /// Set with ``watchdogFired`` when the script was stopped for memory, not time.
    var memoryExceeded = false
    /// The script, kept to make the context anew after the memory limit was exceeded.
    private var source = ""
    /// This thread's CPU time when the VM was last entered.
    private var entryCPUTime: Duration = .zero
    /// `/proc/self/statm`, read every watchdog slice.
    private let statm = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
    /// How much JavaScript runs between two checks of the time and memory limits.
    static let watchdogSlice: Duration = .milliseconds(10)

    init(name: String, limits: FunctionLimits, hostServices: any HostServiceCaller, synchronousHostCalls: Bool = false,
         thread: JavaScriptThread) {
        self.name = name
        self.limits = limits
        self.hostServices = hostServices
        self.synchronousHostCalls = synchronousHostCalls
        self.thread = thread
    }

    deinit {
        if statm >= 0 { Glibc.close(statm) }
    }

    /// The class of the global object, so that it can carry a pointer to its engine.
    private nonisolated(unsafe) static let globalClass: JSClassRef = {
        var definition = kJSClassDefinitionEmpty
        definition.className = UnsafePointer(strdup("NexFunctionGlobal"))
        return JSClassCreate(&definition)
    }()

    /// JavaScriptCore's process-wide options, set once before the first context is made:
    /// polling traps, so that the watchdog also stops loops running in optimized (DFG/FTL)
    /// code. True when they are in effect.
    static let optionsConfigured: Bool = {
        _ = jsc_options_set_boolean("usePollingTraps", 1)
        var value: Int32 = 0
        return jsc_options_get_boolean("usePollingTraps", &value) != 0 && value != 0
    }()

    /// Arms JavaScriptCore's watchdog for one slice of CPU time; its callback checks the
    /// invocation's time and the process's memory, and re-arms it while both are within limits.
    private func armWatchdog() {
        guard let group else { return }
        let this = Unmanaged.passUnretained(self).toOpaque()
        JSContextGroupSetExecutionTimeLimit(group, Self.watchdogSlice.javaScriptSeconds, { _, engine in
            guard let engine else { return true }
            return Unmanaged<JavaScriptEngine>.fromOpaque(engine).takeUnretainedValue().watchdogTick()
        }, this)
    }

    /// Called by the watchdog on this thread after each slice: true stops the script.
    private func watchdogTick() -> Bool {
        if Self.threadCPUTime() - entryCPUTime >= limits.timeout {
            watchdogFired = true
            return true
        }
        if residentBytes() > limits.javaScriptMemoryBytes {
            watchdogFired = true
            memoryExceeded = true
            return true
        }
        armWatchdog()
        return false
    }

    /// Marks an entry into the VM: the time limit counts from here.
    private func enteringVM() {
        watchdogFired = false
        memoryExceeded = false
        entryCPUTime = Self.threadCPUTime()
    }

    private static func threadCPUTime() -> Duration {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
    }

    /// This process's resident memory, bytes (`/proc/self/statm`); 0 when unknown. Read after
    /// every call, so it allocates nothing: one `pread` and a parse on the stack.
    func residentBytes() -> Int {
        guard statm >= 0 else { return 0 }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { buffer in
            let count = pread(statm, buffer.baseAddress, buffer.count, 0)
            guard count > 0 else { return 0 }
            // "size resident shared ...": the second field, in pages.
            var index = 0
            while index < count && buffer[index] != UInt8(ascii: " ") { index += 1 }
            index += 1
            var pages = 0, digits = 0
            while index < count, buffer[index] >= UInt8(ascii: "0"), buffer[index] <= UInt8(ascii: "9"), digits < 18 {
                pages = pages * 10 + Int(buffer[index] - UInt8(ascii: "0"))
                index += 1
                digits += 1
            }
            return digits == 0 ? 0 : pages * Self.pageSize
        }
    }

    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    var memoryExceededError: FunctionError {
        FunctionError("function \(name) exceeded its memory limit of \(limits.javaScriptMemoryBytes / (1024 * 1024)) MiB; "
                      + "its context was discarded and made anew")
    }

    /// Discards the context (and all it holds: the garbage of the calls so far) and makes it
    /// anew from the script. Invocations still waiting fail.
    private func resetAfterMemoryLimit() {
        let reason = memoryExceededError
        close(failing: reason)
        // Let freed pages go back to the system before the next call is measured.
        let deadline = ContinuousClock.now + .seconds(1)
        while residentBytes() > limits.javaScriptMemoryBytes * 3 / 4 && ContinuousClock.now < deadline { usleep(10_000) }
        do {
            try load(source: source, sourceURL: sourceURL)
        } catch {
            close(failing: error)
        }
    }

    /// The engine whose context `context` belongs to.
    static func from(_ context: JSContextRef?) -> JavaScriptEngine? {
        guard let context, let global = JSContextGetGlobalObject(context),
              let pointer = JSObjectGetPrivate(global)
        else { return nil }
        return Unmanaged<JavaScriptEngine>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Creates the context, evaluates the host-services prelude and then `source`, which must
    /// evaluate to a function. Throws a ``FunctionError`` naming the function and saying why.
    func load(source: String, sourceURL: String) throws(FunctionError) {
        self.sourceURL = sourceURL
        guard Self.optionsConfigured else {
            throw FunctionError("cannot load function \(name): JavaScriptCore's polling traps could not be enabled, "
                                + "so a runaway script could not be stopped")
        }
        let group = JSContextGroupCreate()!
        self.group = group
        let context = JSGlobalContextCreateInGroup(group, Self.globalClass)!
        self.context = context
        let this = Unmanaged.passUnretained(self).toOpaque()
        JSObjectSetPrivate(JSContextGetGlobalObject(context), this)
        self.source = source
        armWatchdog()

        try installPrelude(context)

        enteringVM()
        var exception: JSValueRef?
        let value = JavaScriptValue.withString(source) { script in
            JavaScriptValue.withString(sourceURL) { url in JSEvaluateScript(context, script, nil, url, 1, &exception) }
        }
        if let exception {
            if memoryExceeded {
                throw FunctionError("script of function \(name) exceeded its memory limit of "
                                    + "\(limits.javaScriptMemoryBytes / (1024 * 1024)) MiB while loading")
            }
            if watchdogFired {
                throw FunctionError("script of function \(name) timed out after \(limits.timeout.javaScriptText) while loading")
            }
            let errorName = JavaScriptValue.property(context, exception, "name").flatMap { JavaScriptValue.string(context, $0) }
            if errorName == "SyntaxError" {
                throw FunctionError("script of function \(name) does not compile: \(describeLoadError(exception))")
            }
            throw FunctionError("script of function \(name) threw while loading: \(describeLoadError(exception))")
        }
        guard let value, JSValueIsObject(context, value),
              let object = JSValueToObject(context, value, nil), JSObjectIsFunction(context, object)
        else {
            throw FunctionError(
                "script of function \(name) evaluates to \(JavaScriptValue.kind(context, value)), not a function: "
                    + "it must end with an expression such as (subject, payload) => ...")
        }
        JSValueProtect(context, object)
        function = object
        thread.wakeHandler = { [unowned self] in self.expireDeadlines() }
    }

    private func installPrelude(_ context: JSGlobalContextRef) throws(FunctionError) {
        let natives = makeNatives(context)
        var exception: JSValueRef?
        let prelude = JavaScriptValue.withString(JavaScriptHostServices.source) { script in
            JavaScriptValue.withString(JavaScriptHostServices.sourceURL) { url in
                JSEvaluateScript(context, script, nil, url, 1, &exception)
            }
        }
        guard exception == nil, let prelude, let preludeFunction = JSValueToObject(context, prelude, nil) else {
            throw FunctionError("cannot set up the JavaScript environment of function \(name): \(exception.map(describe) ?? "no function")")
        }
        let exports = JavaScriptValue.call(context, preludeFunction, [natives, JSValueMakeBoolean(context, synchronousHostCalls)],
                                           exception: &exception)
        guard exception == nil, let exports,
              let run = JavaScriptValue.property(context, exports, "run").flatMap({ JSValueToObject(context, $0, nil) }),
              let pending = JavaScriptValue.property(context, exports, "pending").flatMap({ JSValueToObject(context, $0, nil) })
        else {
            throw FunctionError("cannot set up the JavaScript environment of function \(name): \(exception.map(describe) ?? "no exports")")
        }
        JSValueProtect(context, run)
        JSValueProtect(context, pending)
        runner = run
        pendingMarker = pending
    }

    /// Runs one invocation; `completion` is resumed exactly once, now or when the returned
    /// promise settles or the deadline passes.
    /// `deadline`: when the invocation's time is up, taken when it was asked for (a call that
    /// waited its turn behind others past it fails without running).
    func invoke(subject: String, payload: [UInt8], traceParent: String? = nil, deadline: UInt64? = nil,
                completion: Completion) {
        guard let context, let runner, let function, let pendingMarker else {
            completion.resume(returning: .failure(FunctionError("function \(name) is unloaded")))
            return
        }
        let id = nextID
        nextID &+= 1
        invocations[id] = completion
        if let traceParent { traceParents[id] = traceParent }
        let started = ContinuousClock.now
        guard let payloadValue = JavaScriptValue.make(context, bytes: payload) else {
            finish(id, .failure(FunctionError("function \(name): cannot make a Uint8Array of \(payload.count) bytes")))
            return
        }
        let arguments: [JSValueRef?] = [
            function, JSValueMakeNumber(context, Double(id)), JavaScriptValue.make(context, string: subject), payloadValue,
        ]
        currentInvocation = id
        currentDeadline = deadline ?? BlockingHostCall.deadline(after: limits.timeout)
        guard WasmConditionLock.now() < currentDeadline else {
            currentInvocation = 0
            currentDeadline = .max
            finish(id, .failure(timedOut))
            return
        }
        synchronousCallTimedOut = false
        enteringVM()
        var exception: JSValueRef?
        // Microtasks (promise reactions) run before this returns, when the API lock is released.
        let result = JavaScriptValue.call(context, runner, arguments, exception: &exception)
        currentInvocation = 0
        currentDeadline = .max
        defer { resetIfOverMemory() }
        if memoryExceeded {
            finish(id, .failure(memoryExceededError))
        } else if synchronousCallTimedOut {
            synchronousCallTimedOut = false
            finish(id, .failure(timedOut))
        } else if watchdogFired {
            finish(id, .failure(timedOut))
            recoverFromTermination(context)
        } else if let exception {
            finish(id, .failure(FunctionError("function \(name) failed: \(describe(exception))")))
        } else if let result, JSValueIsStrictEqual(context, result, pendingMarker) {
            if invocations[id] != nil {
                deadlines.append((id, started.advanced(by: limits.timeout)))
            }
        } else {
            finish(id, reply(from: result))
        }
    }

    /// Settles the promise of a host-service call with its outcome; the function's code that
    /// awaited it runs now (microtasks are drained when the call returns).
    func settleHostCall(_ callID: UInt64, service: String, method: String, outcome: Result<HostServiceReply, any Error>) {
        guard let context, let call = hostCalls.removeValue(forKey: callID) else { return }
        let (fulfilled, argument) = hostCallValue(context, service: service, method: method, outcome: outcome)
        let settle = fulfilled ? call.resolve : call.reject
        currentInvocation = call.owner
        enteringVM()
        var exception: JSValueRef?
        JavaScriptValue.call(context, settle, [argument], exception: &exception)
        currentInvocation = 0
        // Released while the context lives: the memory check below may replace it.
        JSValueUnprotect(context, call.resolve)
        JSValueUnprotect(context, call.reject)
        defer { resetIfOverMemory() }
        if memoryExceeded {
            finish(call.owner, .failure(memoryExceededError))
        } else if watchdogFired {
            finish(call.owner, .failure(timedOut))
            recoverFromTermination(context)
        }
    }

    /// A host call's outcome as JavaScript sees it: the reply's bytes (a `Uint8Array`), or an
    /// `Error` whose `code` is the service's status (500 when the call itself failed).
    func hostCallValue(_ context: JSContextRef, service: String, method: String,
                       outcome: Result<HostServiceReply, any Error>) -> (fulfilled: Bool, value: JSValueRef?) {
        switch outcome {
        case .success(let reply) where reply.isSuccess:
            return (true, JavaScriptValue.make(context, bytes: reply.body))
        case .success(let reply):
            let error = JavaScriptValue.makeError(context, "\(service).\(method) failed: \(reply.code) \(reply.message)")
            JavaScriptValue.set(context, error, "code", JSValueMakeNumber(context, Double(reply.code)))
            return (false, error)
        case .failure(let failure):
            let error = JavaScriptValue.makeError(context, "\(service).\(method) failed: \(failure)")
            JavaScriptValue.set(context, error, "code", JSValueMakeNumber(context, 500))
            return (false, error)
        }
    }

    /// After a VM entry: over the memory limit (stopped by the watchdog, or grown by a call
    /// too short for it to notice), the context is made anew.
    private func resetIfOverMemory() {
        if memoryExceeded || residentBytes() > limits.javaScriptMemoryBytes { resetAfterMemoryLimit() }
    }

    /// When the watchdog stops code that runs while microtasks are drained (after an API call
    /// has returned), the termination exception stays pending in the VM and the next API call
    /// would report it. Entering the VM again clears it.
    private func recoverFromTermination(_ context: JSGlobalContextRef) {
        for _ in 0..<3 {
            enteringVM()
            var exception: JSValueRef?
            JavaScriptValue.withString("undefined") { _ = JSEvaluateScript(context, $0, nil, nil, 1, &exception) }
            if exception == nil { break }
        }
        watchdogFired = false
    }

    /// The reply bytes of a function's result: bytes as they are, a string as UTF-8,
    /// `undefined` as nothing, anything else as JSON.
    func reply(from value: JSValueRef?) -> Result<[UInt8], FunctionError> {
        guard let context, let value, !JSValueIsUndefined(context, value) else { return .success([]) }
        if JSValueIsString(context, value) {
            return .success(Array((JavaScriptValue.string(context, value) ?? "").utf8))
        }
        if let bytes = JavaScriptValue.bytes(context, value) { return .success(bytes) }
        var exception: JSValueRef?
        let json = JSValueCreateJSONString(context, value, 0, &exception)
        if let exception {
            return .failure(FunctionError("function \(name) returned a value that cannot be sent as JSON: \(describe(exception))"))
        }
        guard let json else { return .success([]) }
        defer { JSStringRelease(json) }
        return .success(Array(JavaScriptValue.string(json).utf8))
    }

    /// Resumes the invocation `id` with `result`, if it is still waiting.
    func finish(_ id: UInt64, _ result: Result<[UInt8], FunctionError>) {
        traceParents.removeValue(forKey: id)
        invocations.removeValue(forKey: id)?.resume(returning: result)
    }

    /// A thrown value as text: `String(value)`, then ` (line N)` when it carries a line (with
    /// its source when that is not the function's script).
    func describe(_ exception: JSValueRef) -> String {
        guard let context else { return "an exception" }
        var text = JavaScriptValue.string(context, exception) ?? "an exception that cannot be converted to a string"
        if let line = JavaScriptValue.property(context, exception, "line"), JSValueIsNumber(context, line) {
            let number = Int(JSValueToNumber(context, line, nil))
            let url = JavaScriptValue.property(context, exception, "sourceURL").flatMap { JavaScriptValue.string(context, $0) }
            if let url, url != sourceURL {
                text += " (\(url):\(number))"
            } else {
                text += " (line \(number))"
            }
        }
        return text
    }

    /// The standard error kinds a load error may be named by.
    static let errorKinds: Set<String> = [
        "Error", "SyntaxError", "ReferenceError", "TypeError", "RangeError", "EvalError", "URIError", "AggregateError",
    ]

    /// A load or evaluation error as its kind and line only ("ReferenceError (line 1)"), never
    /// its message: the message quotes the source ("Can't find variable: SXA..."), and the
    /// source may be any file a deployer pointed at, whose text must not come back in a reply.
    func describeLoadError(_ exception: JSValueRef) -> String {
        guard let context else { return "an exception" }
        let errorName = JavaScriptValue.property(context, exception, "name").flatMap { JavaScriptValue.string(context, $0) }
        var text: String
        if JSValueIsObject(context, exception), let errorName, Self.errorKinds.contains(errorName) {
            text = errorName
        } else {
            text = "\(JavaScriptValue.kind(context, exception)) was thrown"
        }
        if let line = JavaScriptValue.property(context, exception, "line"), JSValueIsNumber(context, line) {
            let url = JavaScriptValue.property(context, exception, "sourceURL").flatMap { JavaScriptValue.string(context, $0) }
            text += url == nil || url == sourceURL ? " (line \(Int(JSValueToNumber(context, line, nil))))" : " (in the prelude)"
        }
        return text
    }

    var timedOut: FunctionError {
        FunctionError("function \(name) timed out after \(limits.timeout.javaScriptText)")
    }

    /// Fails the invocations whose deadline has passed; returns the next deadline.
    private func expireDeadlines() -> ContinuousClock.Instant? {
        let now = ContinuousClock.now
        while deadlinesHead < deadlines.count {
            let entry = deadlines[deadlinesHead]
            if invocations[entry.id] != nil {
                if entry.at > now {
                    if deadlinesHead > 1024 {
                        deadlines.removeFirst(deadlinesHead)
                        deadlinesHead = 0
                    }
                    return entry.at
                }
                finish(entry.id, .failure(timedOut))
            }
            deadlinesHead += 1
        }
        deadlines.removeAll(keepingCapacity: true)
        deadlinesHead = 0
        return nil
    }

    /// Fails what is still running, releases every JavaScript value and the context.
    func close() {
        close(failing: FunctionError("function \(name) was unloaded before it finished"))
    }

    /// ``close()``, failing what still runs with `reason`.
    private func close(failing reason: FunctionError) {
        thread.wakeHandler = nil
        for completion in invocations.values {
            completion.resume(returning: .failure(reason))
        }
        deadlines.removeAll()
        deadlinesHead = 0
        invocations = [:]
        traceParents = [:]
        guard let context else { return }
        for call in hostCalls.values {
            JSValueUnprotect(context, call.resolve)
            JSValueUnprotect(context, call.reject)
        }
        hostCalls = [:]
        for value in [function, runner, pendingMarker] {
            if let value { JSValueUnprotect(context, value) }
        }
        function = nil
        runner = nil
        pendingMarker = nil
        JSObjectSetPrivate(JSContextGetGlobalObject(context), nil)
        if let group { JSContextGroupClearExecutionTimeLimit(group) }
        JSGlobalContextRelease(context)
        if let group { JSContextGroupRelease(group) }
        self.context = nil
        self.group = nil
    }
}

extension Duration {
    /// Seconds as a `Double`, as JavaScriptCore's time limit takes them.
    var javaScriptSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// "5 s", "1.5 s", "200 ms": how a time limit reads in an error message.
    var javaScriptText: String {
        let milliseconds = Int((javaScriptSeconds * 1000).rounded())
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        if milliseconds > 1000 { return "\(Double(milliseconds) / 1000) s" }
        return "\(milliseconds) ms"
    }
}
