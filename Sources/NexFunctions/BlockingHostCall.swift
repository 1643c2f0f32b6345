import Dispatch
import NexAgentKit
import NexAgentBus
import Synchronization

/// Runs one asynchronous ``HostServiceCaller/call(service:method:headers:body:)`` for a guest
/// whose host functions are synchronous (a wasm import, a `v8` function's `hostServices`):
/// the call runs in a `Task`, and the guest's thread (never a Swift concurrency thread)
/// blocks on a semaphore until the answer or the invocation's deadline.
enum BlockingHostCall {
    /// The invocation's deadline passed while the guest waited for a host service.
    struct DeadlineExceeded: Error {}

    /// ``WasmConditionLock/now()`` plus `timeout`, the deadline of an invocation starting now
    /// (`UInt64.max - 1` when that overflows).
    static func deadline(after timeout: Duration) -> UInt64 {
        let components = timeout.components
        let nanoseconds = UInt64(max(0, components.seconds)) &* 1_000_000_000 + UInt64(max(0, components.attoseconds) / 1_000_000_000)
        let (deadline, overflow) = WasmConditionLock.now().addingReportingOverflow(nanoseconds)
        return overflow ? .max - 1 : deadline
    }

    /// Calls the host service; returns its reply or the error it threw. Throws
    /// ``DeadlineExceeded`` (after cancelling the call) when `deadline` passes first.
    static func perform(
        _ caller: any HostServiceCaller, service: String, method: String, headers: [String: String],
        body: [UInt8], deadline: UInt64
    ) throws(DeadlineExceeded) -> Result<HostServiceReply, any Error> {
        let slot = Slot()
        let task = Task {
            let result: Result<HostServiceReply, any Error>
            do {
                result = .success(try await caller.call(service: service, method: method, headers: headers, body: body))
            } catch {
                result = .failure(error)
            }
            slot.fill(result)
        }
        let now = WasmConditionLock.now()
        let waited: DispatchTimeoutResult
        if deadline == .max {
            slot.semaphore.wait()
            waited = .success
        } else {
            let remaining = deadline > now ? deadline - now : 0
            waited = slot.semaphore.wait(timeout: .now() + .nanoseconds(Int(min(remaining, UInt64(Int.max)))))
        }
        guard waited == .success, let result = slot.take() else {
            task.cancel()
            throw DeadlineExceeded()
        }
        return result
    }

    /// Where the task leaves its answer for the waiting thread.
    private final class Slot: Sendable {
        let semaphore = DispatchSemaphore(value: 0)
        private let value = Mutex<Result<HostServiceReply, any Error>?>(nil)

        func fill(_ result: Result<HostServiceReply, any Error>) {
            value.withLock { $0 = result }
            semaphore.signal()
        }

        func take() -> Result<HostServiceReply, any Error>? {
            value.withLock { $0.take() }
        }
    }
}
