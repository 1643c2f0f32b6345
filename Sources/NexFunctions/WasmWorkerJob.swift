import NexAgentKit
import WasmKit

/// One piece of work for ``WasmWorkerPool``: an invocation (with a deadline) or the
/// validation of a module at load (without one).
///
/// All mutable state is guarded by the pool's lock; `work` runs on a worker thread.
final class WasmWorkerJob: @unchecked Sendable {
    /// What becomes of a job, in order.
    enum State {
        /// Created, not yet handed to a pool.
        case new
        /// Waiting for a worker.
        case queued
        /// A worker is running it.
        case running
        /// The worker returned.
        case finished
    }

    typealias Outcome = Result<[UInt8], FunctionError>
    /// Runs on a worker with its interpreter stack and its warm instance (see ``WasmWarmInstance``).
    typealias Work = (inout ExecutionStack, inout WasmWarmInstance?, WasmWorkerJob) -> Outcome

    /// Monotonic deadline in nanoseconds (`UInt64.max`: none).
    let deadline: UInt64
    /// The failure reported when the deadline passes.
    let timeoutError: FunctionError
    let work: Work

    // Guarded by the pool's lock.
    var state = State.new
    var continuation: UnsafeContinuation<Outcome, Never>?
    /// Set once the job was given up (deadline or cancellation); its caller has its answer.
    var abandoned: FunctionError?
    /// The store the job is running in, so that the watchdog can empty its fuel.
    var store: Store?
    /// The pool the job was submitted to.
    weak var pool: WasmWorkerPool?

    init(deadline: UInt64, timeoutError: FunctionError, work: @escaping Work) {
        self.deadline = deadline
        self.timeoutError = timeoutError
        self.work = work
    }

    /// Called by `work` once it made the store the guest will run in: from then on the
    /// watchdog can stop the guest. Returns `false` when the job was already given up
    /// (nothing should run).
    func begin(in store: Store) -> Bool {
        guard let pool else { return true }
        return pool.attach(store, to: self)
    }

    /// Why the job was given up (deadline or cancellation), or `nil` while it was not.
    /// Read by `work` on the worker thread.
    var abandonedReason: FunctionError? {
        guard let pool else { return abandoned }
        return pool.lock.withLock { abandoned }
    }
}
