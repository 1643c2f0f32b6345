import Synchronization

/// Hands each ``TrustedLinkLoss`` to every stream from ``AgentBus/trustedLinkLosses()``.
final class LinkLossBroadcaster: Sendable {
    private struct State {
        var next = 0
        var continuations: [Int: AsyncStream<TrustedLinkLoss>.Continuation] = [:]
        var finished = false
    }

    private let state = Mutex(State())

    func stream() -> AsyncStream<TrustedLinkLoss> {
        let (stream, continuation) = AsyncStream.makeStream(of: TrustedLinkLoss.self)
        let id = state.withLock { state -> Int? in
            guard !state.finished else { return nil }
            defer { state.next += 1 }
            state.continuations[state.next] = continuation
            return state.next
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    func yield(_ loss: TrustedLinkLoss) {
        for continuation in state.withLock({ Array($0.continuations.values) }) { continuation.yield(loss) }
    }

    /// Ends every stream (the bus shut down).
    func finish() {
        let continuations = state.withLock { state in
            state.finished = true
            defer { state.continuations.removeAll() }
            return Array(state.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}
