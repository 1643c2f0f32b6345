import NATSWire
import NIOCore

/// What the router delivers to: a socket connection (``BusClientHandler``) or the node's
/// in-process link (``BusLinkPeer``). Used on the bus's event loop only.
protocol BusPeer: AnyObject {
    var clientID: UInt64 { get }
    /// Whether it receives its own publishes on its matching subscriptions.
    var echo: Bool { get }
    /// Whether a request nobody can answer gets an immediate 503 on its reply subject.
    var wantsNoResponders: Bool { get }
    /// The node's own connection: never cut off; when it falls behind, untrusted publishers wait.
    var isTrusted: Bool { get }
    /// Written to since the router last flushed it.
    var isDirty: Bool { get set }
    /// Queues a message for subscription `sid`; false when the peer is gone or was cut off.
    func deliver(subject: String, sid: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer) -> Bool
    /// Hands what was queued since the last flush onwards (to the socket, to the consumers).
    func flush()
    /// A subscription ended by reaching its `UNSUB` maximum.
    func forget(_ subscription: BusSubscription)
}
