/// Restart delays for essential services: 1 s doubling to 60 s; a run of a minute or more
/// counts as healthy and starts the sequence again.
public enum RestartBackoff {
    public static let healthyRun: Duration = .seconds(60)
    public static let maximum: Duration = .seconds(60)

    /// The delay before restart number `failures` (1 = the first failure in a row).
    public static func delay(afterFailures failures: Int) -> Duration {
        guard failures > 1 else { return .seconds(1) }
        let exponent = min(failures - 1, 6)  // 2^6 = 64 > 60
        return min(.seconds(1 << exponent), maximum)
    }
}
