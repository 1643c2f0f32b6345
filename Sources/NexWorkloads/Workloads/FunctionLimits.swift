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
    /// Invocations of one function under way at once, where its messages are taken (the
    /// node's relay, or the agent's own trigger connection); past it a message is answered at
    /// once with ``busyReason(_:)``, so a flood against a slow function cannot grow memory
    /// without bound.
    public var invocationsInFlight = 1024

    /// The `Nex-Function-Error` of a message past ``invocationsInFlight``.
    public func busyReason(_ function: String) -> String {
        "function \(function) is busy: \(invocationsInFlight) invocations under way"
    }

    public init() {}
}
