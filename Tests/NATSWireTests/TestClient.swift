import NATSTestSupport
import NATSWire
import NIOCore

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
