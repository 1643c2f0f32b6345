import Foundation
import NexAgentKit
import NexWorkloads
import NexControl
import Synchronization
import WasmKit

/// A WebAssembly function (WASI preview 1) on WasmKit: loaded once, invoked per trigger
/// message.
///
/// **Contract.** Each call runs the module's `_start` in an instance as it was just after
/// instantiation (nothing carries over from one call to the next: a worker's instance is put
/// back after each call, ``WasmWarmInstance``, or a fresh one is made): the payload is stdin,
/// the whole of stdout is the reply,
/// argv is `[workload_name, trigger_subject]`, the environment is the deploy's, and there is
/// no file system (no preopens). Exit code 0 (or returning from `_start`) is success; a
/// nonzero `proc_exit` fails the call with `exited with code N`, a trap with
/// `wasm trap: <reason>`. Host services are the `nex` import module (``WasmHostModule``).
///
/// **Limits.** Linear memory is capped at ``FunctionLimits/wasmMemoryBytes`` (a larger
/// initial memory refuses the deploy; a `memory.grow` past it returns -1 to the guest).
/// A call's wall time is capped at ``FunctionLimits/timeout``: past it the caller gets
/// `timed out after …` and the guest is stopped, leaving the function usable.
///
/// **How a running guest is stopped.** WasmKit 0.4.2 has no interrupt or epoch API; it has
/// fuel metering (`EngineConfiguration.fuelMetering`, `Store.fuel`): translated code charges
/// fuel at the head of each block and traps with "out of fuel" when the budget cannot pay.
/// Every call runs metered with an unlimited budget; at the deadline the watchdog thread of
/// ``WasmWorkerPool`` sets the store's fuel to 0, and the guest traps at its next charge
/// (within a loop iteration). The interpreter reads and writes the fuel counter without
/// synchronisation, so the watchdog's store is a benign race on an aligned 64-bit word: it
/// can be overwritten by a charge in flight, which is why the watchdog repeats it every
/// millisecond until the guest is gone. A guest blocked in a `nex.call` wakes at the
/// deadline. WASI `poll_oneoff` is not offered (a sleep could not be cut short).
///
/// **Threads.** Guests run on the pool's own threads, never on Swift concurrency threads;
/// ``invoke(subject:payload:)`` awaits a continuation.
public final class WasmFunction: FunctionRunner {
    private let program: WasmProgram
    private let hostServices: any HostServiceCaller
    private let pool: WasmWorkerPool
    private let timeoutNanoseconds: UInt64
    private let timeoutError: FunctionError

    private init(program: WasmProgram, hostServices: any HostServiceCaller, pool: WasmWorkerPool) {
        self.program = program
        self.hostServices = hostServices
        self.pool = pool
        let timeout = program.limits.timeout.components
        let nanoseconds = max(0, timeout.seconds) * 1_000_000_000 + max(0, timeout.attoseconds) / 1_000_000_000
        self.timeoutNanoseconds = UInt64(nanoseconds)
        self.timeoutError = FunctionError("timed out after \(Self.describe(program.limits.timeout))")
    }

    deinit {
        pool.shutdown()
    }

    /// Reads, validates and compiles the module at `function.artifactPath`.
    ///
    /// - Parameters:
    ///   - function: The function; its `type` should be ``WorkloadType/wasm``.
    ///   - hostServices: What `nex.call` reaches.
    ///   - workers: How many calls may run at once (default: two per core, at least four).
    /// - Throws: A ``FunctionError``: `cannot read wasm module at <path>: …`,
    ///   `invalid wasm module: <WasmKit's reason>` (also for a missing `_start` or an import
    ///   this runtime does not provide), or a message naming the memory limit.
    public static func load(
        _ function: FunctionDefinition, hostServices: any HostServiceCaller, workers: Int? = nil
    ) async throws(FunctionError) -> WasmFunction {
        let engine = Engine(configuration: EngineConfiguration(fuelMetering: true))
        let pool = WasmWorkerPool(engine: engine, maxWorkers: workers ?? WasmWorkerPool.defaultWorkerCount)
        let loaded = Mutex<WasmProgram?>(nil)
        // Reading, parsing and compiling are blocking work: they run on a worker too.
        let job = WasmWorkerJob(deadline: .max, timeoutError: FunctionError("loading the wasm module timed out")) {
            _, _, _ in
            let bytes: [UInt8]
            do {
                bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: function.artifactPath)))
            } catch {
                return .failure(FunctionError("cannot read wasm module at \(function.artifactPath): \(error.localizedDescription)"))
            }
            // Errors name what is wrong, never bytes of the file: the artifact may be any file a
            // deployer pointed at, and its content must not come back in a reply.
            guard bytes.starts(with: [0x00, 0x61, 0x73, 0x6D]) else {
                return .failure(FunctionError("invalid wasm module: not a wasm binary (it does not start with \\0asm)"))
            }
            let module: Module
            do {
                module = try parseWasm(bytes: bytes)
            } catch {
                return .failure(FunctionError("invalid wasm module: \(WasmProgram.describeLoadError(error))"))
            }
            // The same module with its globals and tables exported, so that one instance can
            // serve many calls; as it is when it cannot be reset.
            let resettable = WasmResetExports.prepare(bytes).flatMap { prepared in
                (try? parseWasm(bytes: prepared.bytes)).map { ($0, prepared.plan) }
            }
            let program = WasmProgram(module: resettable?.0 ?? module, engine: engine, definition: function,
                                      resetPlan: resettable?.1)
            if let failure = program.validate(hostServices: hostServices) { return .failure(failure) }
            loaded.withLock { $0 = program }
            return .success([])
        }
        let outcome = await pool.run(job)
        guard case .success = outcome, let program = loaded.withLock({ $0 }) else {
            pool.shutdown()
            if case .failure(let error) = outcome { throw error }
            throw FunctionError("loading the wasm module failed")
        }
        return WasmFunction(program: program, hostServices: hostServices, pool: pool)
    }

    /// Runs the module once for a message on `subject`; returns its stdout.
    public func invoke(subject: String, payload: [UInt8], traceParent: String?) async throws(FunctionError) -> [UInt8] {
        let now = WasmConditionLock.now()
        let (deadline, overflow) = now.addingReportingOverflow(timeoutNanoseconds)
        let program = self.program
        let hostServices = self.hostServices
        let job = WasmWorkerJob(deadline: overflow ? .max - 1 : deadline, timeoutError: timeoutError) { stack, warm, job in
            program.run(subject: subject, payload: payload, traceParent: traceParent, hostServices: hostServices, job: job,
                        stack: &stack, warm: &warm)
        }
        return try await pool.run(job).get()
    }

    /// `5 s`, `200 ms`, `1.5 s`.
    static func describe(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        return "\(Double(milliseconds) / 1000) s"
    }
}
