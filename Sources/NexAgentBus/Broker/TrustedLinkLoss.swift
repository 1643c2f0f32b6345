/// A trusted connection to the bus (the node's own link) has closed.
///
/// Delivered by ``AgentBus/trustedLinkLosses()``. The node cannot talk to its agents without
/// that link, so it should treat this as fatal (exit non-zero so that its supervisor restarts
/// it) rather than go on answering health checks.
public struct TrustedLinkLoss: Sendable, Equatable, CustomStringConvertible {
    /// The public nkey of the trusted user whose connection closed.
    public var publicKey: String
    /// The bus's id for the connection (as sent in its `INFO`).
    public var clientID: UInt64
    /// Why it closed: the bus's own `-ERR` text when the bus closed it, otherwise what the
    /// channel reported (the peer closed it, a socket error).
    public var reason: String

    public init(publicKey: String, clientID: UInt64, reason: String) {
        self.publicKey = publicKey
        self.clientID = clientID
        self.reason = reason
    }

    public var description: String {
        "trusted bus connection \(clientID) of \(publicKey) closed: \(reason)"
    }
}
