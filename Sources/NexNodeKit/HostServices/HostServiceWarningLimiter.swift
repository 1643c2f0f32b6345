/// At most one host-services warning per agent per interval (one second by default); the
/// warnings in between are counted, and the next one logged carries that count
/// (`suppressed`). A flood of failing calls from one function makes one line a second, not
/// one per call.
///
/// A value type: the server keeps it under its lock.
struct HostServiceWarningLimiter: Sendable {
    let interval: Duration
    private var agents: [String: Entry] = [:]
    /// Warnings not logged so far, all agents.
    private(set) var suppressedTotal = 0
    /// Warnings logged so far, all agents.
    private(set) var loggedTotal = 0

    private struct Entry {
        var lastLogged: ContinuousClock.Instant
        var suppressed: Int
    }

    init(interval: Duration = .seconds(1)) {
        self.interval = interval
    }

    /// Whether a warning about `agent` may be logged at `now`: the number of warnings
    /// suppressed since the last one logged (to put in it), or nil to suppress this one.
    mutating func admit(_ agent: String, at now: ContinuousClock.Instant = .now) -> Int? {
        if var entry = agents[agent] {
            guard now - entry.lastLogged >= interval else {
                entry.suppressed += 1
                agents[agent] = entry
                suppressedTotal += 1
                return nil
            }
            agents[agent] = Entry(lastLogged: now, suppressed: 0)
            loggedTotal += 1
            return entry.suppressed
        }
        if agents.count >= 4096 {
            // Agents come and go: forget those quiet for a minute.
            agents = agents.filter { now - $0.value.lastLogged < .seconds(60) }
        }
        agents[agent] = Entry(lastLogged: now, suppressed: 0)
        loggedTotal += 1
        return 0
    }
}
