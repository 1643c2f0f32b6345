import NATSTestSupport
import NATSWire
import NIOCore
import Synchronization

/// Connects a client to a test server with short timeouts suited to tests.
func connectedClient(
    _ server: NATSServer, configure: (inout NATSClientOptions) -> Void = { _ in }
) async throws -> NATSClient {
    var options = NATSClientOptions(servers: [server.url])
    options.reconnectWait = .milliseconds(50)
    options.maxReconnectWait = .milliseconds(200)
    options.reconnectJitter = .milliseconds(20)
    configure(&options)
    let client = try NATSClient(options: options)
    try await client.connect()
    return client
}

/// Collects `count` messages from a subscription, failing if they do not arrive within `seconds`.
func collect(_ subscription: NATSSubscription, count: Int, within seconds: Double = 10) async throws -> [NATSMessage] {
    try await withThrowingTaskGroup(of: [NATSMessage]?.self) { group in
        group.addTask {
            var messages: [NATSMessage] = []
            for await message in subscription {
                messages.append(message)
                if messages.count == count { break }
            }
            return messages
        }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        guard let messages = first else { throw TestTimeout(what: "\(count) messages on \(subscription.subject)") }
        return messages
    }
}

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

/// Runs `operation`, failing with `TestTimeout` if it takes longer than `seconds`.
func withDeadline<T: Sendable>(
    _ seconds: Double, _ what: String, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        guard let value = first else { throw TestTimeout(what: what) }
        return value
    }
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
