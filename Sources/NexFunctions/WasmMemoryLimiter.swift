import WasmKit

/// Caps the linear memory (and tables) of one guest instance: the initial size at
/// instantiation and every `memory.grow`. A refused grow makes `memory.grow` return -1, as
/// the wasm spec has it; a refused initial size fails the instantiation.
///
/// One per store; used only on the thread running that store, which is what makes the
/// mutable record of the last refusal safe.
final class WasmMemoryLimiter: ResourceLimiter, @unchecked Sendable {
    /// Largest linear memory, bytes.
    let maxMemoryBytes: Int
    /// Largest table, elements.
    let maxTableElements: Int
    /// The size of the last refused memory request, bytes (for error messages).
    private(set) var refusedMemoryBytes: Int?

    init(maxMemoryBytes: Int) {
        self.maxMemoryBytes = maxMemoryBytes
        // A table element is a reference (8 bytes here): the same budget in elements.
        self.maxTableElements = max(1024, maxMemoryBytes / 8)
    }

    func limitMemoryGrowth(to desired: Int) throws -> Bool {
        guard desired <= maxMemoryBytes else {
            refusedMemoryBytes = desired
            return false
        }
        return true
    }

    func limitTableGrowth(to desired: Int) throws -> Bool {
        desired <= maxTableElements
    }
}
