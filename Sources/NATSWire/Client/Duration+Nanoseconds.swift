// The public API speaks Swift's `Duration`. Where NIO's timers need a `TimeAmount`, the code
// converts with NIOCore's own `TimeAmount(_:)` (and `Duration(_:)` back); this file holds the
// integer views of a `Duration` the package needs, shared by every module of it.

extension Duration {
    /// Whole nanoseconds, truncated toward zero; saturates at `Int64`'s range (about 292 years).
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, sumOverflow) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        if sumOverflow { return seconds < 0 ? .min : .max }
        return sum
    }

    /// Whole milliseconds, truncated toward zero.
    package var milliseconds: Int64 { nanoseconds / 1_000_000 }
}
