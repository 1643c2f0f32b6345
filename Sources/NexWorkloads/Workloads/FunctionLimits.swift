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
