import NexWorkloads

/// The function runtimes: WebAssembly on WasmKit and JavaScript on JavaScriptCore.
/// Only `nex-agent` links this module, so the node stays small.
public struct NexFunctionRuntime: FunctionRuntime {
    public init() {}

    public func load(_ function: FunctionDefinition, hostServices: any HostServiceCaller) async throws(FunctionError)
        -> any FunctionRunner
    {
        throw FunctionError("\(function.type.rawValue) functions are not supported by this agent yet")
    }
}
