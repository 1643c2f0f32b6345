#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with two condition variables, timed on the monotonic clock: the lock of
/// ``WasmWorkerPool``. Workers wait on ``work``, the watchdog on ``watchdog``, so waking
/// one never wakes the other.
///
/// Deadlines are nanoseconds of ``WasmConditionLock/now()`` (`CLOCK_MONOTONIC`).
final class WasmConditionLock: @unchecked Sendable {
    /// Names one of the two condition variables.
    enum Condition {
        case work
        case watchdog
    }

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let workCondition: UnsafeMutablePointer<pthread_cond_t>
    private let watchdogCondition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        workCondition = .allocate(capacity: 1)
        watchdogCondition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if os(Linux)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(workCondition, &attributes)
        pthread_cond_init(watchdogCondition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(workCondition)
        pthread_cond_destroy(watchdogCondition)
        pthread_mutex_destroy(mutex)
        workCondition.deallocate()
        watchdogCondition.deallocate()
        mutex.deallocate()
    }

    /// The monotonic clock, in nanoseconds.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` holding the lock.
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits on `condition` (the lock must be held) until signalled or until `deadline`
    /// (`nil`: no deadline). Spurious wake-ups happen: callers re-check their predicate.
    func wait(_ condition: Condition, until deadline: UInt64?) {
        let cond = pointer(condition)
        guard let deadline else {
            pthread_cond_wait(cond, mutex)
            return
        }
        var time = timespec()
        time.tv_sec = Int(deadline / 1_000_000_000)
        time.tv_nsec = Int(deadline % 1_000_000_000)
        pthread_cond_timedwait(cond, mutex, &time)
    }

    /// Wakes one waiter of `condition`.
    func signal(_ condition: Condition) { pthread_cond_signal(pointer(condition)) }

    /// Wakes every waiter of `condition`.
    func broadcast(_ condition: Condition) { pthread_cond_broadcast(pointer(condition)) }

    private func pointer(_ condition: Condition) -> UnsafeMutablePointer<pthread_cond_t> {
        switch condition {
        case .work: workCondition
        case .watchdog: watchdogCondition
        }
    }
}
