/// What a ``HostServicesServer`` is doing and has refused, for tests, `info` and metrics.
public struct HostServicesStatistics: Sendable, Equatable {
    /// Calls being served right now, all agents.
    public var inFlight = 0
    /// The most calls one agent had in flight at once since the server started (never above
    /// ``HostServicesConfiguration/maxCallsInFlightPerAgent``).
    public var peakInFlightPerAgent = 0
    /// Calls answered at once with 429 because their agent had as many in flight as allowed.
    public var busy = 0
    /// Warnings logged, and warnings left out by the per-agent rate limit.
    public var warningsLogged = 0
    public var warningsSuppressed = 0

    public init() {}
}
