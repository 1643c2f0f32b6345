import NIOCore

/// One user's publish budget: a token bucket over bytes and one over messages.
///
/// Publishing always spends (the bytes have arrived already); a budget in debt tells how
/// long the user must wait until it has been repaid, and the bus stops reading from the
/// user's connections for that long. So a flooding agent is slowed to its rate and loses
/// nothing, and the bus never holds more than one socket read of its input.
struct PublishBudget: Sendable {
    private let bytesPerSecond: Double
    private let messagesPerSecond: Double
    private let byteCapacity: Double
    private let messageCapacity: Double
    private var bytes: Double
    private var messages: Double
    private var refilled: NIODeadline

    init(limits: BusLimits, now: NIODeadline) {
        bytesPerSecond = Double(max(1, limits.publishBytesPerSecond))
        messagesPerSecond = Double(max(1, limits.publishMessagesPerSecond))
        let burst = max(limits.publishBurstSeconds, 0.001)
        byteCapacity = bytesPerSecond * burst
        messageCapacity = max(1, messagesPerSecond * burst)
        bytes = byteCapacity
        messages = messageCapacity
        refilled = now
    }

    /// Spends one message of `size` bytes.
    mutating func spend(bytes size: Int) {
        bytes -= Double(size)
        messages -= 1
    }

    /// Refills for the time passed and returns how long until neither bucket is in debt;
    /// nil when the user may go on at once.
    mutating func wait(now: NIODeadline) -> TimeAmount? {
        let elapsed = Double((now - refilled).nanoseconds) / 1e9
        if elapsed > 0 {
            bytes = min(byteCapacity, bytes + elapsed * bytesPerSecond)
            messages = min(messageCapacity, messages + elapsed * messagesPerSecond)
            refilled = now
        }
        let seconds = max(-bytes / bytesPerSecond, -messages / messagesPerSecond)
        guard seconds > 0 else { return nil }
        return .nanoseconds(Int64((seconds * 1e9).rounded(.up)))
    }
}
