import NATSTestSupport
import NATSWire
import NIOCore
import Synchronization

struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

// MARK: - Helpers of the client integration tests (Tests/NATSWireTests/Client)

/// A thread-safe list that tasks append to and the test reads.
final class Recorded<Element: Sendable>: Sendable {
    private let storage = Mutex<[Element]>([])

    func append(_ element: Element) { storage.withLock { $0.append(element) } }
    var all: [Element] { storage.withLock { $0 } }
    var count: Int { storage.withLock { $0.count } }
}

/// Records every event of a client from the moment it is created.
final class EventRecorder: Sendable {
    let events = Recorded<NATSEvent>()
    private let ended = Mutex(false)

    init(_ client: NATSClient) {
        let stream = client.events()
        Task { [self] in
            for await event in stream { events.append(event) }
            ended.withLock { $0 = true }
        }
    }

    /// Whether the event stream finished (it does when the client closes).
    var streamEnded: Bool { ended.withLock { $0 } }

    var all: [NATSEvent] { events.all }

    /// Waits for the first recorded event that `match` accepts.
    @discardableResult
    func waitFor(
        _ what: String, timeout: Duration = .seconds(5), _ match: @escaping @Sendable (NATSEvent) -> Bool
    ) async throws -> NATSEvent {
        try await waitForValue(timeout: timeout, "event \(what); events so far: \(all)") {
            all.first(where: match)
        }
    }

    /// Index of the first event `match` accepts.
    func firstIndex(_ match: (NATSEvent) -> Bool) -> Int? { all.firstIndex(where: match) }
}

/// How long `operation` took, with its result (or error).
func timed<T>(_ operation: () async throws -> T) async -> (Result<T, any Error>, Duration) {
    let clock = ContinuousClock()
    let start = clock.now
    do {
        let value = try await operation()
        return (.success(value), start.duration(to: clock.now))
    } catch {
        return (.failure(error), start.duration(to: clock.now))
    }
}
