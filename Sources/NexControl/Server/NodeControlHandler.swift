/// What a node does for each control request. ``ControlServer`` decodes, validates and replies;
/// the node implements this protocol.
///
/// Return `nil` where Nex 0.2 stays silent by design (a workload ping or an auction that does
/// not concern this node). Throw to answer with an error envelope carrying the error's description.
public protocol NodeControlHandler: Sendable {
    /// Answers `$NEX.PING` and `$NEX.PING.<node>`.
    func ping() async -> PingResponse
    /// Answers `$NEX.WPING.<namespace>[.<workload>]` (`workload` is an id or a name); nil when the
    /// node runs no matching workload.
    func workloadPing(namespace: String, workload: String?) async -> WorkloadPingResponse?
    /// Answers `$NEX.AUCTION`; nil when the node does not match `request`.
    func auction(_ request: AuctionRequest) async -> PingResponse?
    /// Answers `$NEX.INFO.<namespace>.<node>`.
    func info(namespace: String) async throws -> InfoResponse
    /// Answers `$NEX.DEPLOY.<namespace>.<node>`: checks and starts the workload.
    func deploy(namespace: String, request: DeployRequest) async throws -> RunResponse
    /// Answers `$NEX.STOP.<namespace>.<node>`: stops the workload and returns once it is gone.
    func stop(namespace: String, request: StopRequest) async throws -> StopResponse
    /// Answers `$NEX.LAMEDUCK.<node>`: enters lame duck mode (and, with a delay, exits after it).
    func lameDuck(_ request: LameDuckRequest) async throws -> LameDuckResponse
}
