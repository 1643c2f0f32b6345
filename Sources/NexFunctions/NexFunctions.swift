import NexAgentKit
import NexWorkloads
import NexControl

/// The function runtimes: WebAssembly on WasmKit and JavaScript on JavaScriptCore.
/// Only `nex-agent` links this module, so the node stays small.
public struct NexFunctionRuntime: FunctionRuntime {
    public init() {}

    public func load(_ function: FunctionDefinition, hostServices: any HostServiceCaller) async throws(FunctionError)
        -> any FunctionRunner
    {
        switch function.type {
        case .wasm: return try await WasmFunction.load(function, hostServices: hostServices)
        case .javascript, .v8: return try await JavaScriptFunction.load(function, hostServices: hostServices)
        case .native: throw FunctionError("native workloads are services, not functions")
        }
    }
}
