import NexAgentBus
import NexControl
import NexWorkloads

/// Runs one function workload (wasm or JavaScript) inside an agent: loaded once at deploy,
/// invoked once per trigger message.
///
/// The runtimes live in the `NexFunctions` module (WasmKit, JavaScriptCore), which only
/// `nex-agent` links; the agent reaches them through these protocols.
public protocol FunctionRunner: Sendable {
    /// Runs one invocation: `subject` is the trigger subject the message arrived on;
    /// `traceParent` (W3C) is the invocation's trace context, added as the `traceparent`
    /// header of every host-service call the invocation makes. Returns the reply bytes;
    /// throws a ``FunctionError`` saying what failed.
    func invoke(subject: String, payload: [UInt8], traceParent: String?) async throws(FunctionError) -> [UInt8]
}

extension FunctionRunner {
    /// Runs one invocation outside any trace.
    public func invoke(subject: String, payload: [UInt8]) async throws(FunctionError) -> [UInt8] {
        try await invoke(subject: subject, payload: payload, traceParent: nil)
    }
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
