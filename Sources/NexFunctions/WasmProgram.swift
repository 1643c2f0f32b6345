import Foundation
import NexAgentKit
import NexWorkloads
import NexControl
@_spi(Fuzzing) import WasmKit
@_spi(WASIPlatform) import WASI
import WasmKitWASI

/// A validated wasm module with everything a call needs that does not change between calls.
/// ``run(subject:payload:hostServices:job:stack:warm:)`` runs a call on a worker thread, in
/// the worker's warm instance when the module can be reset (``WasmWarmInstance``), else in a
/// fresh store and instance.
struct WasmProgram: Sendable {
    static let wasiModuleName = "wasi_snapshot_preview1"

    let module: Module
    let engine: Engine
    let workloadName: String
    let environment: [String: String]
    let limits: FunctionLimits
    /// The `wasi_snapshot_preview1` functions the module imports.
    let wasiImports: [String]
    /// The `nex` functions the module imports.
    let nexImports: [String]
    /// The subset of ``wasiCapabilities`` that provides the imported WASI functions; asking
    /// WASI for only these keeps the per-call setup small.
    let neededCapabilities: [WasmKitWASI.WASICapability]
    /// Whether some imported WASI function is in no offered capability (answered `ENOSYS`).
    let needsStubs: Bool
    /// What an instance exports for resetting, when it can be reset and serve many calls.
    let resetPlan: WasmResetExports.Plan?

    /// What WASI offers guests: arguments and environment, clocks, random, `proc_exit`,
    /// stdio, and the file-system calls over an empty in-memory file system with no
    /// preopens (so a guest opens nothing, and libc's preopen scan ends with `EBADF`).
    /// `poll_oneoff` and sockets answer `ENOSYS`: a sleeping guest could not be stopped.
    static let wasiCapabilities: [WasmKitWASI.WASICapability] = [.environment, .clocks, .random, .process, .stdio, .fileSystem]

    /// The WASI function names of each entry of ``wasiCapabilities``, by index.
    private static let capabilityNames: [Set<String>] = {
        guard let bridge = try? WASIBridgeToHost(args: [], environment: [:], fileSystem: .memory(emptyFileSystem)) else {
            return []
        }
        defer { try? bridge.close() }
        return wasiCapabilities.map { Set(bridge.hostFunctions(capabilities: [$0], stubUnlinked: false).keys) }
    }()

    /// The file system behind `.fileSystem`: empty, and unreachable without preopens.
    private static let emptyFileSystem: MemoryFileSystem = {
        // MemoryFileSystem.init only builds an empty root node; it cannot fail in practice.
        try! MemoryFileSystem()
    }()

    init(module: Module, engine: Engine, definition: FunctionDefinition, resetPlan: WasmResetExports.Plan? = nil) {
        self.module = module
        self.resetPlan = resetPlan
        self.engine = engine
        self.workloadName = definition.workloadName
        self.environment = definition.environment
        self.limits = definition.limits
        var wasi: [String] = []
        var nex: [String] = []
        for entry in module.imports {
            guard case .function = entry.descriptor else { continue }
            if entry.module == Self.wasiModuleName { wasi.append(entry.name) }
            if entry.module == WasmHostModule.moduleName { nex.append(entry.name) }
        }
        self.wasiImports = wasi
        self.nexImports = nex
        let names = Self.capabilityNames
        if names.count == Self.wasiCapabilities.count {
            let imported = Set(wasi)
            let needed = names.indices.filter { !names[$0].isDisjoint(with: imported) }
            self.neededCapabilities = needed.map { Self.wasiCapabilities[$0] }
            self.needsStubs = !imported.isSubset(of: needed.reduce(into: Set<String>()) { $0.formUnion(names[$1]) })
        } else {
            self.neededCapabilities = Self.wasiCapabilities
            self.needsStubs = true
        }
    }

    // MARK: - Load

    /// Checks the module at load: every function body is validated and compiled (an eager
    /// instantiation with the start function dropped, so no guest code runs), the imports
    /// resolve, and the initial memory fits the limit. Runs on a worker thread.
    func validate(hostServices: any HostServiceCaller) -> FunctionError? {
        guard module.exports.contains(where: { export in
            if case .function = export.descriptor { return export.name == "_start" }
            return false
        }) else {
            return FunctionError("invalid wasm module: it exports no _start function (a WASI command module is expected)")
        }
        for entry in module.imports {
            let known: Bool
            switch entry.module {
            case Self.wasiModuleName: known = true
            case WasmHostModule.moduleName: known = WasmHostModule.functionNames.contains(entry.name)
            default: known = false
            }
            guard known, case .function = entry.descriptor else {
                return FunctionError(
                    "invalid wasm module: it imports \(entry.module).\(entry.name), which this runtime does not provide")
            }
        }
        var checked = module
        checked.dropStartFunction()
        let checkEngine = Engine(
            configuration: EngineConfiguration(compilationMode: .eager, features: engine.configuration.features))
        let store = Store(engine: checkEngine)
        let limiter = WasmMemoryLimiter(maxMemoryBytes: limits.wasmMemoryBytes)
        store.resourceLimiter = limiter
        let invocation = WasmInvocation(payload: [], stdoutLimit: 0, hostServices: hostServices, deadline: .max)
        do {
            let bridge = try WASIBridgeToHost(
                args: [workloadName], environment: [:],
                fileSystem: .memory(Self.emptyFileSystem).withStdio(
                    stdin: invocation.stdin, stdout: invocation.stdout, stderr: invocation.stderr))
            defer { try? bridge.close() }
            invocation.wasi = wasiFunctions(of: bridge)
            defer { invocation.wasi = [:] }
            _ = try checked.instantiate(store: store, imports: imports(store: store, invocation: invocation))
        } catch {
            if let refused = limiter.refusedMemoryBytes {
                return FunctionError(Self.describeMemoryRefusal(refused, limit: limiter.maxMemoryBytes))
            }
            return FunctionError("invalid wasm module: \(Self.describeLoadError(error))")
        }
        return nil
    }

    /// A parse or validation error without what it quotes: WasmKit's messages may carry
    /// names, strings and bytes from the module, so quoted and bracketed parts are dropped
    /// and long runs of letters and digits (which could be a secret's text) are elided.
    static func describeLoadError(_ error: any Error) -> String {
        var text = ""
        var depth = 0
        for character in "\(error)" {
            switch character {
            case "\"", "'", "`":
                if depth == 0 { text += "…" }
                depth = depth == 0 ? 1 : 0
            case "[", "(", "{":
                if depth == 0 { text += "…" }
                depth += 1
            case "]", ")", "}":
                depth = max(0, depth - 1)
            default:
                if depth == 0 { text.append(character) }
            }
        }
        let words = text.split(separator: " ", omittingEmptySubsequences: false).map { word in
            word.count > 24 ? "…" : String(word)
        }
        return words.joined(separator: " ")
    }

    // MARK: - One call

    /// Runs the module's `_start` once for a trigger message, on a worker thread: in `warm`
    /// (the worker's instance, kept when the module can be reset) or in a fresh instance.
    func run(
        subject: String, payload: [UInt8], traceParent: String? = nil, hostServices: any HostServiceCaller,
        job: WasmWorkerJob, stack: inout ExecutionStack, warm: inout WasmWarmInstance?
    ) -> Result<[UInt8], FunctionError> {
        let instance: WasmWarmInstance
        if let kept = warm.take() {
            instance = kept
            instance.invocation.begin(payload: payload, deadline: job.deadline)
        } else {
            let store = Store(engine: engine)
            let limiter = WasmMemoryLimiter(maxMemoryBytes: limits.wasmMemoryBytes)
            store.resourceLimiter = limiter
            let invocation = WasmInvocation(
                payload: payload, stdoutLimit: limits.wasmMemoryBytes, hostServices: hostServices, deadline: job.deadline)
            instance = WasmWarmInstance(store: store, limiter: limiter, invocation: invocation)
        }
        let invocation = instance.invocation
        invocation.traceParent = traceParent
        guard job.begin(in: instance.store) else {
            instance.discard()
            return .failure(job.timeoutError)
        }
        if instance.bridge?.subject != subject {
            instance.dropBridge()
            do {
                let bridge = try WASIBridgeToHost(
                    args: [workloadName, subject], environment: environment,
                    fileSystem: .memory(Self.emptyFileSystem).withStdio(
                        stdin: invocation.stdin, stdout: invocation.stdout, stderr: invocation.stderr))
                instance.use(bridge, for: subject, functions: wasiFunctions(of: bridge))
            } catch {
                instance.discard()
                return .failure(FunctionError("cannot set up WASI for the call: \(error)"))
            }
        }

        let outcome = call(instance, job: job, stack: &stack)
        // A call that may have changed the bridge's descriptors leaves the next one a fresh bridge.
        if invocation.touchedWASIState { instance.dropBridge() }
        if case .success = outcome, instance.reset() {
            warm = instance
        } else {
            instance.discard()
        }
        return outcome
    }

    /// Instantiates when the instance is new, then runs `_start` and takes stdout.
    private func call(_ instance: WasmWarmInstance, job: WasmWorkerJob, stack: inout ExecutionStack)
        -> Result<[UInt8], FunctionError>
    {
        let invocation = instance.invocation
        if instance.instance == nil {
            do {
                try instance.instantiate(module, imports: imports(store: instance.store, invocation: invocation),
                                         plan: resetPlan)
            } catch {
                return .failure(failure(error, during: "instantiation", invocation: invocation, limiter: instance.limiter, job: job))
            }
        }
        guard let start = instance.start else { return .failure(FunctionError("wasm module exports no _start function")) }
        do {
            try start.invoke([], on: &stack)
        } catch let exit as WASIExitCode {
            if exit.code != 0 {
                return .failure(FunctionError(Self.describeExit(exit.code, invocation: invocation)))
            }
        } catch {
            return .failure(failure(error, during: "call", invocation: invocation, limiter: instance.limiter, job: job))
        }
        if invocation.stdout.overflowed {
            return .failure(FunctionError("stdout exceeded the limit of \(invocation.stdout.limit) bytes"))
        }
        return .success(invocation.stdout.take())
    }

    /// The WASI functions that leave a bridge as they found it: they read its arguments and
    /// environment, the clocks and randomness, or use the stdio streams (emptied for each
    /// call) and descriptors no call can add. A call of any other marks the bridge used up.
    static let stateFreeWASIFunctions: Set<String> = [
        "args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_res_get", "clock_time_get",
        "random_get", "proc_exit", "sched_yield", "fd_read", "fd_write", "fd_fdstat_get", "fd_filestat_get",
        "fd_prestat_get", "fd_prestat_dir_name",
    ]

    /// The WASI functions the module imports, from this call's bridge.
    private func wasiFunctions(of bridge: WASIBridgeToHost) -> [String: WASIHostFunction<Memory>] {
        guard !wasiImports.isEmpty else { return [:] }
        return bridge.hostFunctions(capabilities: neededCapabilities, stubUnlinked: needsStubs)
    }

    /// The module's imports in `store`: its WASI functions, which call the current call's
    /// bridge (``WasmInvocation/wasi``, set before instantiating), and its `nex` functions.
    private func imports(store: Store, invocation: WasmInvocation) -> Imports {
        var imports = Imports()
        for name in wasiImports {
            guard let type = invocation.wasi[name]?.type else { continue }
            let touchesState = !Self.stateFreeWASIFunctions.contains(name)
            imports.define(
                module: Self.wasiModuleName, name: name,
                Function(store: store, type: type) { caller, arguments in
                    if touchesState { invocation.touchedWASIState = true }
                    guard let memory = invocation.guestMemory(caller) else {
                        throw WasmProgramError("WASI \(name) needs an exported memory named \"memory\"")
                    }
                    guard let function = invocation.wasi[name] else {
                        throw WasmProgramError("WASI \(name) called outside a call")
                    }
                    return try function.implementation(memory, arguments)
                })
        }
        WasmHostModule.define(nexImports, into: &imports, store: store, invocation: invocation)
        return imports
    }

    // MARK: - Errors

    private func failure(
        _ error: any Error, during phase: String, invocation: WasmInvocation, limiter: WasmMemoryLimiter,
        job: WasmWorkerJob
    ) -> FunctionError {
        if let reason = job.abandonedReason { return reason }
        if invocation.deadlineExceeded || error is BlockingHostCall.DeadlineExceeded {
            return job.timeoutError
        }
        if let trap = error as? Trap {
            let reason = Self.trapReason(trap)
            if phase == "instantiation", let refused = limiter.refusedMemoryBytes {
                return FunctionError(Self.describeMemoryRefusal(refused, limit: limiter.maxMemoryBytes))
            }
            var message = "wasm trap: \(reason)"
            if let refused = limiter.refusedMemoryBytes {
                message += " (memory.grow to \(refused) bytes was refused: the limit is \(limiter.maxMemoryBytes) bytes)"
            }
            let tail = invocation.stderrTail
            if !tail.isEmpty { message += "; stderr: \(tail)" }
            return FunctionError(message)
        }
        return FunctionError("wasm \(phase) failed: \(error)")
    }

    /// The trap's reason, without the `Trap: ` prefix and the backtrace.
    static func trapReason(_ trap: Trap) -> String {
        var text = trap.description
        if let newline = text.firstIndex(of: "\n") { text = String(text[..<newline]) }
        if text.hasPrefix("Trap: ") { text = String(text.dropFirst(6)) }
        return text
    }

    static func describeExit(_ code: UInt32, invocation: WasmInvocation) -> String {
        var message = "exited with code \(code)"
        let tail = invocation.stderrTail
        if !tail.isEmpty { message += "; stderr: \(tail)" }
        return message
    }

    static func describeMemoryRefusal(_ bytes: Int, limit: Int) -> String {
        "wasm module needs \(bytes) bytes of linear memory at start, over the limit of \(limit) bytes"
    }
}

/// A failure inside the runtime's own glue (not the guest's).
private struct WasmProgramError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
