/// Runs `body`, then runs and awaits `teardown`, whether `body` returned or threw.
///
/// The structured replacement for `defer { Task { await resource.close() } }`: that form
/// leaves the teardown to an unstructured task that may still be running when the next test
/// starts; here the caller does not go on until the teardown has finished. Write the teardown
/// next to the resource it ends, as with `defer`:
///
///     let bus = try await TestBus.start()
///     try await withTeardown({ await bus.shutdown() }) {
///         // use bus
///     }
///
/// The teardown runs even when the task is cancelled; it should not throw (log or ignore
/// what it cannot finish), so that it never hides the body's error.
public func withTeardown<Result>(
    isolation: isolated (any Actor)? = #isolation,
    _ teardown: () async -> Void,
    body: () async throws -> Result
) async throws -> Result {
    let result: Result
    do {
        result = try await body()
    } catch {
        await teardown()
        throw error
    }
    await teardown()
    return result
}
