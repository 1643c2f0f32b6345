import Foundation
import NexAgentKit
@_spi(WASIPlatform) import WASI
import WasmKit

/// The state of one guest call, shared by its WASI streams and its `nex` host functions. The
/// instance's imports read it through this object, so an instance that serves many calls
/// (``WasmWarmInstance``) gets a fresh one per call with ``begin(payload:deadline:wasi:)``:
/// nothing leaks from one call into the next.
final class WasmInvocation {
    /// The last `nex.call` result, as the guest reads it back.
    struct HostResult {
        var code: Int32 = 0
        var body: [UInt8] = []
        var message: [UInt8] = []
    }

    let stdin: WasmInputStream
    let stdout: WasmOutputStream
    let stderr: WasmOutputStream
    let hostServices: any HostServiceCaller
    /// Monotonic deadline of the call, nanoseconds (`UInt64.max`: none).
    private(set) var deadline: UInt64
    /// The WASI functions of the bridge in use (its arguments and these streams), by name.
    var wasi: [String: WASIHostFunction<Memory>] = [:]
    /// Set when the guest called a WASI function that may change the bridge's state (its
    /// descriptor table: `fd_close`, `fd_renumber`, ...): the bridge is then not used again.
    var touchedWASIState = false
    /// The guest's exported `memory`, once instantiated.
    var memory: Memory?
    var lastResult = HostResult()
    /// Set when the deadline passed inside a host call.
    var deadlineExceeded = false
    /// The call's trace context, sent as `traceparent` with its host calls.
    var traceParent: String?

    /// Bytes of stderr kept for error messages.
    static let stderrLimit = 16 * 1024

    init(payload: [UInt8], stdoutLimit: Int, hostServices: any HostServiceCaller, deadline: UInt64) {
        stdin = WasmInputStream(payload)
        stdout = WasmOutputStream(limit: stdoutLimit, failsWhenFull: true)
        stderr = WasmOutputStream(limit: Self.stderrLimit, failsWhenFull: false)
        self.hostServices = hostServices
        self.deadline = deadline
    }

    /// Starts the next call on the same instance: emptied streams, a new deadline and
    /// host-call result.
    func begin(payload: [UInt8], deadline: UInt64) {
        stdin.reset(payload)
        stdout.reset()
        stderr.reset()
        self.deadline = deadline
        lastResult = HostResult()
        deadlineExceeded = false
        touchedWASIState = false
    }

    /// The guest's memory: the one found at instantiation, else the caller's `memory` export
    /// (a host function called from the start function, before instantiation returned).
    func guestMemory(_ caller: borrowing Caller) -> Memory? {
        if let memory { return memory }
        return caller.instance?.exports[memory: "memory"]
    }

    /// The end of stderr, one line, for error messages (empty when nothing was written).
    var stderrTail: String {
        let text = String(decoding: stderr.bytes.suffix(400), as: UTF8.self)
        return text.split(whereSeparator: \.isNewline).map(String.init).joined(separator: " | ")
            .trimmingCharacters(in: .whitespaces)
    }
}
