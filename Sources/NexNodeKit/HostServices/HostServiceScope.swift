import NexAgentBus
import NexWorkloads
import NATSWire

/// The workload an agent runs, as the node knows it: what a host-services request of that
/// agent may touch. The namespace and workload tokens of a request's subject must match it.
public struct HostServiceScope: Sendable {
    public var namespace: String
    public var workloadName: String
    /// The workload's NATS connection for host services: the deploy's `host_services`
    /// settings, else the node's host-services connection; never the control connection.
    public var connection: NATSClient

    public init(namespace: String, workloadName: String, connection: NATSClient) {
        self.namespace = namespace
        self.workloadName = workloadName
        self.connection = connection
    }
}
