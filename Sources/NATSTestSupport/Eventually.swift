import Foundation

/// Thrown by `waitFor` when the condition is still false at the deadline.
public struct WaitForTimeoutError: Error, CustomStringConvertible {
    public let timeout: Duration
    public let message: String
    public let file: String
    public let line: Int

    public var description: String {
        let what = message.isEmpty ? "condition" : "'\(message)'"
        return "waitFor: \(what) not met within \(timeout) (\(file):\(line))"
    }
}

/// Polls `condition` until it returns true, or throws `WaitForTimeoutError`
/// once `timeout` has elapsed. The condition is always evaluated at least
/// once, and once more right at the deadline. Errors thrown by the condition
/// propagate immediately; cancellation of the calling task ends the wait
/// with `CancellationError`.
///
///     try await waitFor(timeout: .seconds(2)) { received.count == 10 }
public func waitFor(
    timeout: Duration = .seconds(5),
    pollInterval: Duration = .milliseconds(10),
    _ message: @autoclosure () -> String = "",
    file: String = #fileID,
    line: Int = #line,
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while true {
        if try await condition() { return }
        let now = clock.now
        if now >= deadline { break }
        let remaining = now.duration(to: deadline)
        try await Task.sleep(for: min(pollInterval, remaining))
    }
    throw WaitForTimeoutError(timeout: timeout, message: message(), file: file, line: line)
}

/// Polls `produce` until it returns a non-nil value and returns that value,
/// or throws `WaitForTimeoutError` when `timeout` elapses first.
public func waitForValue<T>(
    timeout: Duration = .seconds(5),
    pollInterval: Duration = .milliseconds(10),
    _ message: @autoclosure () -> String = "",
    file: String = #fileID,
    line: Int = #line,
    _ produce: () async throws -> T?
) async throws -> T {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while true {
        if let value = try await produce() { return value }
        let now = clock.now
        if now >= deadline { break }
        try await Task.sleep(for: min(pollInterval, now.duration(to: deadline)))
    }
    throw WaitForTimeoutError(timeout: timeout, message: message(), file: file, line: line)
}
