
/// The rate at which one workload's output lines reach its node: a token bucket for lines and
/// one for bytes, each holding two seconds of its rate.
///
/// A workload that prints flat out would otherwise fill the agent bus and the node's log
/// forwarding with its output, and every other workload would wait behind it. Lines over the
/// rate are dropped (the workload is never slowed down: its output is still read), and the
/// agent says how many in the workload's own log stream, at most once a second.
///
/// A value type: the agent keeps one per workload and asks it about each line.
public struct LogRateLimiter: Sendable {
    /// What to do with a line.
    public enum Decision: Sendable, Equatable {
        /// Forward it; first say that `dropped` lines were dropped since the last notice
        /// (`total` since the workload started), when `notice` is set.
        case forward(notice: Notice?)
        /// Drop it.
        case drop
    }

    /// Lines dropped since the last notice, and since the workload started.
    public struct Notice: Sendable, Equatable {
        public var dropped: Int
        public var total: Int
    }

    public let rate: LogRate
    private var lineTokens: Double
    private var byteTokens: Double
    private var refilled: ContinuousClock.Instant
    private var droppedSinceNotice = 0
    private var lastNotice: ContinuousClock.Instant?
    /// Lines dropped since the workload started.
    public private(set) var totalDropped = 0

    public init(rate: LogRate, now: ContinuousClock.Instant = .now) {
        self.rate = rate
        lineTokens = Double(rate.linesPerSecond) * 2
        byteTokens = Double(rate.bytesPerSecond) * 2
        refilled = now
    }

    /// Decides about a line of `bytes` bytes arriving at `now`.
    public mutating func admit(bytes: Int, now: ContinuousClock.Instant = .now) -> Decision {
        refill(now)
        // (A line longer than the whole byte bucket passes when the bucket is full.)
        guard lineTokens >= 1, byteTokens >= Double(bytes) || byteTokens >= Double(rate.bytesPerSecond) * 2 else {
            droppedSinceNotice += 1
            totalDropped += 1
            return .drop
        }
        lineTokens -= 1
        byteTokens -= Double(bytes)
        return .forward(notice: takeNotice(now: now, force: false))
    }

    /// The notice still owed when the output ends (nil when nothing was dropped since the last).
    public mutating func finalNotice() -> Notice? {
        takeNotice(now: .now, force: true)
    }

    private mutating func takeNotice(now: ContinuousClock.Instant, force: Bool) -> Notice? {
        guard droppedSinceNotice > 0 else { return nil }
        if !force, let last = lastNotice, last.duration(to: now) < .seconds(1) { return nil }
        defer {
            droppedSinceNotice = 0
            lastNotice = now
        }
        return Notice(dropped: droppedSinceNotice, total: totalDropped)
    }

    private mutating func refill(_ now: ContinuousClock.Instant) {
        let elapsed = refilled.duration(to: now)
        guard elapsed > .zero else { return }
        refilled = now
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        lineTokens = min(Double(rate.linesPerSecond) * 2, lineTokens + seconds * Double(rate.linesPerSecond))
        byteTokens = min(Double(rate.bytesPerSecond) * 2, byteTokens + seconds * Double(rate.bytesPerSecond))
    }
}
