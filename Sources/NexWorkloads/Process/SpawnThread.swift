#if canImport(Glibc)
import Glibc
#endif

/// One long-lived thread that forks every child started with a parent-death signal.
///
/// Linux delivers `PR_SET_PDEATHSIG` when the *thread* that forked the child ends, not the
/// process, and Swift's cooperative pool and Dispatch retire idle threads. This thread is
/// started on first use and never ends, so the signal means "this process died".
package final class SpawnThread: @unchecked Sendable {
    package static let shared = SpawnThread()

    private final class Job {
        let work: () -> Void
        var finished = false
        init(work: @escaping () -> Void) { self.work = work }
    }

    // All fields below are guarded by `mutex`.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    private let done: UnsafeMutablePointer<pthread_cond_t>
    private var queue: [Job] = []
    private var started = false
    private var threadID: pthread_t = 0

    private init() {
        mutex = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        done = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
    }

    /// Whether the caller is the spawn thread itself.
    private var isCurrent: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return started && pthread_equal(threadID, pthread_self()) != 0
    }

    /// Runs `body` on the spawn thread and returns its result; the caller blocks meanwhile
    /// (a fork and an exec: milliseconds).
    package func run<T>(_ body: () throws -> T) throws -> T {
        if isCurrent { return try body() }
        var result: Result<T, any Error>?
        withoutActuallyEscaping(body) { body in
            let job = Job { result = Result { try body() } }
            pthread_mutex_lock(mutex)
            startIfNeeded()
            queue.append(job)
            pthread_cond_signal(wake)
            while !job.finished { pthread_cond_wait(done, mutex) }
            pthread_mutex_unlock(mutex)
        }
        return try result!.get()
    }

    /// A pipe whose ends are close-on-exec. `pipe2` is not visible from Swift, so the flag is
    /// set right after `pipe` — on this thread, so that no child forked here can inherit the
    /// ends in between. Returns `[read, write]`, or throws the errno.
    package func makePipe() throws -> [Int32] {
        try run {
            var ends: [Int32] = [-1, -1]
            guard pipe(&ends) == 0 else { throw PipeError(code: errno) }
            for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            return ends
        }
    }

    struct PipeError: Error, CustomStringConvertible {
        var code: Int32
        var description: String { "pipe: \(String(cString: strerror(code)))" }
    }

    /// Called with `mutex` held.
    private func startIfNeeded() {
        guard !started else { return }
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { argument in
            let owner = Unmanaged<SpawnThread>.fromOpaque(argument!).takeUnretainedValue()
            owner.loop()
            return nil
        }, Unmanaged.passUnretained(self).toOpaque())
        precondition(status == 0, "cannot start the process spawn thread: \(String(cString: strerror(status)))")
        threadID = thread
        started = true
    }

    private func loop() {
        pthread_mutex_lock(mutex)
        while true {
            while queue.isEmpty { pthread_cond_wait(wake, mutex) }
            let job = queue.removeFirst()
            pthread_mutex_unlock(mutex)
            job.work()
            pthread_mutex_lock(mutex)
            job.finished = true
            pthread_cond_broadcast(done)
        }
    }
}
