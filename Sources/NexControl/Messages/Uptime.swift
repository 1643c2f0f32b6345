/// Durations the way NATS servers print them: `1d2h3m4s`, `5m0s`, `12s`.
package enum Uptime {
    /// `total` seconds as `1d2h3m4s`, leading zero units left out; negative counts as 0.
    package static func format(seconds total: Int) -> String {
        let total = max(0, total)
        let days = total / 86_400, hours = total % 86_400 / 3600, minutes = total % 3600 / 60, seconds = total % 60
        if days > 0 { return "\(days)d\(hours)h\(minutes)m\(seconds)s" }
        if hours > 0 { return "\(hours)h\(minutes)m\(seconds)s" }
        if minutes > 0 { return "\(minutes)m\(seconds)s" }
        return "\(seconds)s"
    }
}
