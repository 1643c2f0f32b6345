/// What a node does for each control request. ``ControlServer`` decodes, validates and replies;
/// the node implements this protocol.
///
/// Return `nil` where Nex 0.2 stays silent by design (a workload ping or an auction that does
/// not concern this node). Throw to answer with an error envelope carrying the error's description.
public protocol NodeControlHandler: Sendable {
    func ping() async -> PingResponse
    func workloadPing(namespace: String, workload: String?) async -> WorkloadPingResponse?
    func auction(_ request: AuctionRequest) async -> PingResponse?
    func info(namespace: String) async throws -> InfoResponse
    func deploy(namespace: String, request: DeployRequest) async throws -> RunResponse
    func stop(namespace: String, request: StopRequest) async throws -> StopResponse
    func lameDuck() async throws -> LameDuckResponse
}
