import Foundation
import NexAgentKit
import WasmKit

/// The threads wasm guests run on: a guest is synchronous code that may spin or block in a
/// host call, so it never runs on a Swift concurrency thread. Callers `await` a
/// continuation that a worker (or the watchdog) resumes.
///
/// Workers are started on demand, up to `maxWorkers`, and stay for the life of the pool;
/// each keeps one interpreter stack, so a call allocates none. One watchdog thread gives up
/// jobs whose deadline passed: it answers their caller with the timeout error and, while
/// the guest still runs, empties its store's fuel every millisecond, which makes the
/// interpreter trap at its next fuel check (see ``WasmFunction`` for why).
final class WasmWorkerPool: @unchecked Sendable {
    let lock = WasmConditionLock()
    private let engine: Engine
    private let maxWorkers: Int

    // Guarded by `lock`.
    private var queue: [WasmWorkerJob] = []
    private var queueHead = 0
    private var running: [WasmWorkerJob] = []
    private var workers = 0
    private var idleWorkers = 0
    private var watchdogStarted = false
    /// When the watchdog will look next (`UInt64.max`: when woken).
    private var watchdogWakeAt = UInt64.max
    private var shuttingDown = false

    /// Interval at which the fuel of a given-up, still running guest is emptied again.
    static let fuelRetryNanoseconds: UInt64 = 1_000_000

    /// - Parameters:
    ///   - engine: The engine the guests run on (each worker keeps a stack sized for it).
    ///   - maxWorkers: How many guests may run at once.
    init(engine: Engine, maxWorkers: Int) {
        self.engine = engine
        self.maxWorkers = max(1, maxWorkers)
    }

    /// The default number of workers: two per core, at least four, since a guest waiting
    /// for a host service holds its worker.
    static var defaultWorkerCount: Int {
        max(4, 2 * ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Runs `job` on a worker and returns its outcome, or the error it was given up with.
    func run(_ job: WasmWorkerJob) async -> WasmWorkerJob.Outcome {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                submit(job, continuation: continuation)
            }
        } onCancel: {
            abandon(job, because: FunctionError("the invocation was cancelled"))
        }
    }

    /// Lets the threads end once the queue is empty.
    func shutdown() {
        lock.withLock {
            shuttingDown = true
            lock.broadcast(.work)
            lock.broadcast(.watchdog)
        }
    }

    // MARK: - Submitting and giving up

    private func submit(_ job: WasmWorkerJob, continuation: UnsafeContinuation<WasmWorkerJob.Outcome, Never>) {
        lock.lock()
        job.pool = self
        if let reason = job.abandoned {
            // Cancelled before it was submitted.
            job.state = .finished
            lock.unlock()
            continuation.resume(returning: .failure(reason))
            return
        }
        if shuttingDown {
            job.state = .finished
            lock.unlock()
            continuation.resume(returning: .failure(FunctionError("the wasm function was unloaded")))
            return
        }
        job.continuation = continuation
        job.state = .queued
        queue.append(job)
        if idleWorkers > 0 {
            lock.signal(.work)
        }
        // Start a worker when the waiting jobs outnumber the idle workers (woken or not).
        if queue.count - queueHead > idleWorkers && workers < maxWorkers {
            workers += 1
            startThread(name: "nex-wasm-\(workers)") { [self] in workerLoop() }
        }
        if job.deadline != .max {
            if !watchdogStarted {
                watchdogStarted = true
                watchdogWakeAt = job.deadline
                startThread(name: "nex-wasm-watchdog") { [self] in watchdogLoop() }
            } else if job.deadline < watchdogWakeAt {
                lock.signal(.watchdog)
            }
        }
        lock.unlock()
    }

    /// Gives `job` up: its caller is answered with `reason` now, a queued job never runs, and
    /// a running guest is stopped by the watchdog.
    func abandon(_ job: WasmWorkerJob, because reason: FunctionError) {
        lock.lock()
        let continuation = abandonLocked(job, because: reason)
        if job.state == .running {
            job.store?.fuel = Fuel(remaining: 0)
            if !watchdogStarted {
                watchdogStarted = true
                watchdogWakeAt = 0
                startThread(name: "nex-wasm-watchdog") { [self] in watchdogLoop() }
            } else {
                lock.signal(.watchdog)
            }
        }
        lock.unlock()
        continuation?.resume(returning: .failure(reason))
    }

    /// Marks `job` given up and takes its continuation (to resume after unlocking).
    private func abandonLocked(_ job: WasmWorkerJob, because reason: FunctionError)
        -> UnsafeContinuation<WasmWorkerJob.Outcome, Never>?
    {
        guard job.abandoned == nil, job.state != .finished else { return nil }
        job.abandoned = reason
        if job.state == .queued, let index = queue[queueHead...].firstIndex(where: { $0 === job }) {
            queue.remove(at: index)
            job.state = .finished
        }
        defer { job.continuation = nil }
        return job.continuation
    }

    /// Called on the worker (through ``WasmWorkerJob/begin(in:)``) once the guest's store
    /// exists. Returns `false` when the job was given up meanwhile.
    func attach(_ store: Store, to job: WasmWorkerJob) -> Bool {
        lock.withLock {
            guard job.abandoned == nil else { return false }
            job.store = store
            return true
        }
    }

    // MARK: - Threads

    private func startThread(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.name = name
        thread.start()
    }

    private func workerLoop() {
        var stack = ExecutionStack(engine: engine)
        // The worker's instance of the function, kept between calls when it can be reset.
        var warm: WasmWarmInstance?
        defer { warm?.discard() }
        lock.lock()
        while true {
            while queueHead == queue.count && !shuttingDown {
                idleWorkers += 1
                lock.wait(.work, until: nil)
                idleWorkers -= 1
            }
            if queueHead == queue.count {
                // Shutting down with nothing left to do.
                workers -= 1
                lock.unlock()
                return
            }
            let job = queue[queueHead]
            queueHead += 1
            if queueHead > 64 && queueHead * 2 > queue.count {
                queue.removeFirst(queueHead)
                queueHead = 0
            }
            job.state = .running
            running.append(job)
            lock.unlock()

            let outcome = job.work(&stack, &warm, job)

            lock.lock()
            job.state = .finished
            job.store = nil
            if let index = running.firstIndex(where: { $0 === job }) {
                running.remove(at: index)
            }
            let continuation = job.continuation
            job.continuation = nil
            lock.unlock()
            continuation?.resume(returning: outcome)
            lock.lock()
        }
    }

    private func watchdogLoop() {
        lock.lock()
        while true {
            if shuttingDown && running.isEmpty && queueHead == queue.count {
                lock.unlock()
                return
            }
            let now = WasmConditionLock.now()
            var wakeAt = UInt64.max
            var expired: [(UnsafeContinuation<WasmWorkerJob.Outcome, Never>, FunctionError)] = []
            for job in running {
                if job.abandoned == nil && job.deadline <= now,
                    let continuation = abandonLocked(job, because: job.timeoutError)
                {
                    expired.append((continuation, job.timeoutError))
                }
                if job.abandoned != nil {
                    // Keep emptying the fuel until the guest is gone: the interpreter charges
                    // fuel without synchronisation, so one store can be overwritten by a charge
                    // in flight. See WasmFunction.
                    job.store?.fuel = Fuel(remaining: 0)
                    wakeAt = min(wakeAt, now + Self.fuelRetryNanoseconds)
                } else {
                    wakeAt = min(wakeAt, job.deadline)
                }
            }
            var index = queueHead
            while index < queue.count {
                let job = queue[index]
                if job.deadline <= now {
                    if let continuation = abandonLocked(job, because: job.timeoutError) {
                        expired.append((continuation, job.timeoutError))
                    }
                    // abandonLocked removed it from the queue; step over it if it did not.
                    if index < queue.count && queue[index] === job { index += 1 }
                    continue
                }
                wakeAt = min(wakeAt, job.deadline)
                index += 1
            }
            watchdogWakeAt = wakeAt
            if !expired.isEmpty {
                lock.unlock()
                for (continuation, error) in expired {
                    continuation.resume(returning: .failure(error))
                }
                lock.lock()
                continue
            }
            lock.wait(.watchdog, until: wakeAt == .max ? nil : wakeAt)
        }
    }
}
