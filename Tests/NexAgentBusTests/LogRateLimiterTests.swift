import Testing
@testable import NexAgentBus

@Suite struct LogRateLimiterTests {
    @Test func aBurstOfTwoSecondsPassesThenTheRateHolds() {
        let start = ContinuousClock.now
        var limiter = LogRateLimiter(rate: .init(linesPerSecond: 10, bytesPerSecond: 1 << 20), now: start)
        var forwarded = 0
        for _ in 0..<100 {
            if case .forward = limiter.admit(bytes: 10, now: start) { forwarded += 1 }
        }
        #expect(forwarded == 20)
        #expect(limiter.totalDropped == 80)
        // Half a second later: five more lines, and the first of them carries the notice.
        let later = start.advanced(by: .milliseconds(500))
        #expect(limiter.admit(bytes: 10, now: later) == .forward(notice: .init(dropped: 80, total: 80)))
        var more = 1
        for _ in 0..<10 {
            if case .forward(let notice) = limiter.admit(bytes: 10, now: later) {
                more += 1
                #expect(notice == nil)
            }
        }
        #expect(more == 5)
        // Drops within a second of the last notice are owed until the next second, or the end.
        #expect(limiter.finalNotice() == .init(dropped: 6, total: 86))
        #expect(limiter.finalNotice() == nil)
    }

    @Test func bytesAreLimitedToo() {
        let start = ContinuousClock.now
        var limiter = LogRateLimiter(rate: .init(linesPerSecond: 1_000_000, bytesPerSecond: 1000), now: start)
        #expect(limiter.admit(bytes: 1500, now: start) == .forward(notice: nil))
        #expect(limiter.admit(bytes: 500, now: start) == .forward(notice: nil))
        #expect(limiter.admit(bytes: 1, now: start) == .drop)
        // A line longer than the whole bucket still passes once the bucket is full again.
        #expect(limiter.admit(bytes: 5000, now: start.advanced(by: .seconds(3))) == .forward(notice: .init(dropped: 1, total: 1)))
    }
}
