/// Runs one function workload (wasm or JavaScript) inside an agent: loaded once at deploy,
/// invoked once per trigger message.
///
/// The runtimes live in the `NexFunctions` module (WasmKit, JavaScriptCore), which only
/// `nex-agent` links; the agent reaches them through these protocols.
public protocol FunctionRunner: Sendable {
    /// Runs one invocation: `subject` is the trigger subject the message arrived on.
    /// Returns the reply bytes; throws a ``FunctionError`` saying what failed.
    func invoke(subject: String, payload: [UInt8]) async throws(FunctionError) -> [UInt8]
}

/// Loads functions. `nex-agent` passes one to `AgentService`.
public protocol FunctionRuntime: Sendable {
    /// Validates and compiles the artifact; throws a ``FunctionError`` (the deploy is refused
    /// with its message) for an invalid module or a script with a syntax error.
    func load(_ function: FunctionDefinition, hostServices: any HostServiceCaller) async throws(FunctionError)
        -> any FunctionRunner
}

/// What a function is made of.
public struct FunctionDefinition: Sendable {
    public var type: WorkloadType
    public var workloadName: String
    public var namespace: String
    public var artifactPath: String
    public var environment: [String: String]
    public var limits: FunctionLimits

    public init(type: WorkloadType, workloadName: String, namespace: String, artifactPath: String,
                environment: [String: String], limits: FunctionLimits = FunctionLimits()) {
        self.type = type; self.workloadName = workloadName; self.namespace = namespace
        self.artifactPath = artifactPath; self.environment = environment; self.limits = limits
    }
}

/// Per-call limits of a function.
public struct FunctionLimits: Sendable, Equatable {
    /// Wall time of one invocation; a runaway call is stopped and the runner stays usable.
    public var timeout: Duration = .seconds(5)
    /// Linear memory of a wasm instance, bytes.
    public var wasmMemoryBytes = 64 * 1024 * 1024
    /// Size of a JavaScript source, bytes.
    public var scriptBytes = 1024 * 1024
    /// Resident memory of a JavaScript function's agent, bytes: checked every 10 ms of
    /// JavaScript execution and after every call. Over it, the running invocation fails
    /// ("exceeded its memory limit") and the function's context is discarded and made anew
    /// from its script, so the next call does not see the garbage.
    public var javaScriptMemoryBytes = 256 * 1024 * 1024

    public init() {}
}

/// Why a function could not be loaded or an invocation failed. The message is what the
/// requester sees in the `Nex-Function-Error` header and what `function_exec_failed` carries.
public struct FunctionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Calls the node's host services (`kv`, `objectstore`, `messaging`, `http`) for a function,
/// over `hostint.<agent>.rpc.<ns>.<workload>.<service>.<method>`.
public protocol HostServiceCaller: Sendable {
    func call(service: String, method: String, headers: [String: String], body: [UInt8]) async throws -> HostServiceReply
}

/// A host service's answer: `x-nex-hs-code` (HTTP-like: 200, 400, 404, 500) and `x-nex-hs-msg`.
public struct HostServiceReply: Sendable, Equatable {
    public var code: Int
    public var message: String
    public var headers: [String: String]
    public var body: [UInt8]

    public init(code: Int, message: String, headers: [String: String] = [:], body: [UInt8] = []) {
        self.code = code; self.message = message; self.headers = headers; self.body = body
    }

    public var isSuccess: Bool { code == 200 }
}
