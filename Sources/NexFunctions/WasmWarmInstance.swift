@_spi(WASIPlatform) import WASI
import WasmKit
import WasmKitWASI

/// A store and instance of a function's module that a worker keeps from one call to the next,
/// put back after each call into the state it had when instantiated: its linear memory's bytes,
/// its mutable globals and its tables (exported for this by ``WasmResetExports``). A call then
/// costs no instantiation (module validation, memory allocation, data segments, and the
/// translation of every function it runs), and still sees nothing of the call before.
///
/// When the module cannot be reset (no ``WasmResetExports/Plan``), or a call failed, grew the
/// memory or left state that cannot be put back, the instance is discarded and the next call
/// gets a fresh one. Used only on its worker thread.
final class WasmWarmInstance {
    let store: Store
    let limiter: WasmMemoryLimiter
    /// The call state the instance's imports read; begun anew for each call.
    let invocation: WasmInvocation
    private(set) var instance: Instance?
    /// The WASI bridge of the calls so far and the subject it was made for (it is `argv[1]`):
    /// kept while the calls leave its state as they found it, since making one (and its
    /// table of functions) was a tenth of a call's cost.
    private(set) var bridge: (bridge: WASIBridgeToHost, subject: String)?
    private(set) var start: Function?
    /// What the instance looked like before its first call; nil when it cannot be reset.
    private var snapshot: Snapshot?

    private struct Snapshot {
        var memory: Memory?
        var bytes: [UInt8]
        var globals: [(Global, Value)]
        var tables: [(Table, [Reference])]
    }

    init(store: Store, limiter: WasmMemoryLimiter, invocation: WasmInvocation) {
        self.store = store
        self.limiter = limiter
        self.invocation = invocation
    }

    /// Instantiates `module` and, with a `plan`, records the state to return to.
    func instantiate(_ module: Module, imports: Imports, plan: WasmResetExports.Plan?) throws {
        let instance = try module.instantiate(store: store, imports: imports)
        self.instance = instance
        start = instance.exports[function: "_start"]
        let memory = instance.exports[memory: "memory"]
        invocation.memory = memory
        guard let plan else { return }
        var globals: [(Global, Value)] = []
        for name in plan.globals {
            guard let global = instance.exports[global: name] else { return }
            globals.append((global, global.value))
        }
        var tables: [(Table, [Reference])] = []
        for (name, count) in plan.tables {
            guard let table = instance.exports[table: name] else { return }
            tables.append((table, (0..<count).map { table[$0] }))
        }
        // A module without an exported memory has none the guest can use (WASI needs it).
        snapshot = Snapshot(memory: memory, bytes: memory?.data ?? [], globals: globals, tables: tables)
    }

    /// Puts the instance back as it was instantiated; false when it cannot be (no snapshot,
    /// or the memory grew), and it must be discarded.
    func reset() -> Bool {
        guard let snapshot else { return false }
        if let memory = snapshot.memory {
            guard memory.byteCount == snapshot.bytes.count else { return false }
            memory.withUnsafeMutableBufferPointer(offset: 0, count: snapshot.bytes.count) { target in
                snapshot.bytes.withUnsafeBytes { source in target.copyMemory(from: source) }
            }
        }
        for (global, value) in snapshot.globals {
            guard (try? global.assign(value)) != nil else { return false }
        }
        for (table, elements) in snapshot.tables {
            for (index, element) in elements.enumerated() where table[index] != element { table[index] = element }
        }
        return true
    }

    /// Uses `bridge`, made for `subject`, for this call and the next ones.
    func use(_ bridge: WASIBridgeToHost, for subject: String, functions: [String: WASIHostFunction<Memory>]) {
        self.bridge = (bridge, subject)
        invocation.wasi = functions
    }

    /// Closes the bridge; the next call makes a fresh one.
    func dropBridge() {
        try? bridge?.bridge.close()
        bridge = nil
        invocation.wasi = [:]
    }

    /// Drops the instance: its memory refers back to the store, whose host functions refer
    /// to the invocation, so the cycle is broken here or the store would never be freed.
    func discard() {
        dropBridge()
        invocation.memory = nil
        snapshot = nil
        instance = nil
        start = nil
    }
}
