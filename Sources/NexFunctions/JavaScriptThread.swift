#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A dedicated OS thread that runs jobs one at a time, in the order they were posted.
///
/// A JavaScriptCore context is used from this thread only, so JavaScript never runs on (or
/// blocks) a thread of Swift's cooperative pool: async callers post a job and await a
/// continuation that the job resumes. Besides jobs, the thread can be woken at a time the
/// owner asks for (``wakeHandler``), which is how invocation deadlines are enforced.
final class JavaScriptThread: @unchecked Sendable {
    typealias Job = @Sendable () -> Void

    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    /// Guarded by `mutex`.
    private var jobs: [Job] = []
    /// Guarded by `mutex`.
    private var stopping = false
    /// Called on the thread after every batch of jobs and whenever the time it last returned
    /// has come; returns the next time it wants to be called, or `nil` for none. Set and read
    /// on the thread only.
    var wakeHandler: (() -> ContinuousClock.Instant?)?

    /// Starts the thread; `name` is used in the message if it cannot be started.
    init(name: String) {
        var conditionAttributes = pthread_condattr_t()
        pthread_condattr_init(&conditionAttributes)
        pthread_condattr_setclock(&conditionAttributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &conditionAttributes)
        pthread_condattr_destroy(&conditionAttributes)
        pthread_mutex_init(&mutex, nil)

        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        // JavaScriptCore sizes its recursion limit from the thread's stack.
        pthread_attr_setstacksize(&attributes, 8 * 1024 * 1024)
        let context = Unmanaged.passRetained(Box(thread: self))
        var handle = pthread_t()
        let started = pthread_create(&handle, &attributes, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.thread.loop()
            return nil
        }, context.toOpaque())
        pthread_attr_destroy(&attributes)
        precondition(started == 0, "cannot start the JavaScript thread \(name): error \(started)")
        pthread_detach(handle)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    /// Queues `job` to run on the thread. Returns false (and drops the job) once ``stop()``
    /// has been called.
    @discardableResult
    func post(_ job: @escaping Job) -> Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        guard !stopping else { return false }
        jobs.append(job)
        pthread_cond_signal(&condition)
        return true
    }

    /// Lets the jobs already posted run, then ends the thread. Later posts are refused.
    func stop() {
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    private func loop() {
        var wakeAt: ContinuousClock.Instant?
        var batch: [Job] = []
        while true {
            pthread_mutex_lock(&mutex)
            while jobs.isEmpty && !stopping {
                guard let deadline = wakeAt else {
                    pthread_cond_wait(&condition, &mutex)
                    continue
                }
                let remaining = ContinuousClock.now.duration(to: deadline)
                if remaining <= .zero { break }
                var until = timespec()
                clock_gettime(CLOCK_MONOTONIC, &until)
                let (seconds, attoseconds) = remaining.components
                let nanoseconds = Int(until.tv_nsec) + Int(attoseconds / 1_000_000_000) + 1
                until.tv_sec += time_t(seconds) + time_t(nanoseconds / 1_000_000_000)
                until.tv_nsec = Int(nanoseconds % 1_000_000_000)
                pthread_cond_timedwait(&condition, &mutex, &until)
            }
            swap(&batch, &jobs)
            let finished = stopping && batch.isEmpty
            pthread_mutex_unlock(&mutex)
            if finished { return }
            for job in batch { job() }
            batch.removeAll(keepingCapacity: true)
            wakeAt = wakeHandler?()
        }
    }

    /// The thread object, passed through `pthread_create`'s argument.
    private final class Box {
        let thread: JavaScriptThread
        init(thread: JavaScriptThread) { self.thread = thread }
    }
}
