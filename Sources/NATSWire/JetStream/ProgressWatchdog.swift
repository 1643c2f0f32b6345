import Synchronization

/// Ends a subscription when the work waiting on it makes no progress for `limit`: the task
/// iterating it then sees the sequence end and asks ``timedOut`` why.
///
/// Progress is reported with ``progressed()``; ``expecting(_:)`` says whether anything is
/// awaited (the watchdog sleeps through idle periods). Messages waiting in the subscription
/// count as progress, so a slow reader is never mistaken for a silent server.
final class ProgressWatchdog: Sendable {
    private struct State {
        var lastProgress = ContinuousClock.now
        var waiting = false
        var timedOut = false
    }

    let limit: Duration
    private let state = Mutex(State())
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(watching subscription: NATSSubscription, limit: Duration) {
        self.limit = limit
        let check = Swift.max(limit / 4, .milliseconds(10))
        // Owned by the watchdog: cancelled by `cancel()` (its user's teardown) and in `deinit`;
        // it holds only a weak reference, so it never outlives its owner by more than one tick.
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: check)
                guard let self else { return }
                if self.expire(pending: subscription.pendingMessages) {
                    try? await subscription.unsubscribe()
                    return
                }
            }
        }
        self.task.withLock { $0 = task }
    }

    deinit {
        task.withLock { $0?.cancel() }
    }

    func cancel() {
        task.withLock { $0?.cancel() }
    }

    var timedOut: Bool { state.withLock { $0.timedOut } }

    func progressed() {
        state.withLock { $0.lastProgress = .now }
    }

    /// Whether something is awaited; the clock restarts when waiting begins.
    func expecting(_ waiting: Bool) {
        state.withLock { s in
            if waiting && !s.waiting { s.lastProgress = .now }
            s.waiting = waiting
        }
    }

    /// Messages waiting in the subscription count as progress: the reader is slow, not the server.
    private func expire(pending: Int) -> Bool {
        state.withLock { s in
            if pending > 0 { s.lastProgress = .now }
            guard s.waiting, !s.timedOut, s.lastProgress.duration(to: .now) > limit else { return false }
            s.timedOut = true
            return true
        }
    }
}
