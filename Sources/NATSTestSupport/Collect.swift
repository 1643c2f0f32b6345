import NATSWire

/// Collects the next `count` messages of `subscription`, throwing ``TimeLimitExceeded`` when
/// they have not all arrived within `seconds`.
public func collect(
    _ subscription: NATSSubscription, count: Int, within seconds: Double = 10
) async throws -> [NATSMessage] {
    try await withTimeLimit(.seconds(seconds), "\(count) messages on \(subscription.subject)") {
        var messages: [NATSMessage] = []
        for await message in subscription {
            messages.append(message)
            if messages.count == count { break }
        }
        return messages
    }
}
