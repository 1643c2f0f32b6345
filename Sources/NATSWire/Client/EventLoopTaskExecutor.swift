import NIOCore

/// A task executor that runs jobs on an event loop (a NATSWire connection's, the agent bus's).
///
/// A task run with `withTaskExecutorPreference(client.taskExecutor) { ... }` shares the
/// thread that reads and writes the connection: its publishes are flushed right after it
/// suspends, and replies resume it without a thread hop. That is the lowest request/reply
/// latency NATSWire offers (the counterpart of the C client's send-as-soon-as-possible
/// option). Never block such a task: it would stall the connection.
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The event loop the jobs run on: the one the client's connection uses.
    public let eventLoop: any EventLoop

    /// Runs jobs on `eventLoop`.
    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `job` on ``eventLoop`` (called by the Swift runtime, not by you).
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
