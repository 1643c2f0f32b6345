/// Thrown by ``withTimeLimit(_:_:_:)`` when the body is still running at the limit.
public struct TimeLimitExceeded: Error, CustomStringConvertible {
    /// What the body was doing, as the test named it.
    public let what: String
    public let limit: Duration

    public var description: String { "\(what) did not finish within \(limit)" }
}

/// Runs `body`, cancelling it and throwing ``TimeLimitExceeded`` when it has not finished
/// within `limit`; returns its result otherwise. The body runs in a child task and is awaited
/// either way (cancelled at the limit), so nothing of it outlives the call.
///
///     let messages = try await withTimeLimit(.seconds(5), "3 replies") { ... }
public func withTimeLimit<T: Sendable>(
    _ limit: Duration,
    _ what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw TimeLimitExceeded(what: what, limit: limit)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
