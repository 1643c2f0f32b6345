import NIOCore

/// TLS on the system OpenSSL for the suite's other client connections (the node's `http` host
/// service), so that nothing links a second TLS stack: the same context and handler as a
/// ``NATSClient``'s, verifying the server against `options` (the system store by default) and
/// the host name.
package struct TLSClientFactory: Sendable {
    private let context: TLSContext

    /// Loads the trust store and any client certificate once; throws naming a file that does
    /// not load.
    package init(_ options: NATSTLSOptions = NATSTLSOptions()) throws(NATSError) {
        context = try TLSContext(options)
    }

    /// A handler to put first in a new channel's pipeline: it starts the handshake when the
    /// channel is active, holds writes until the server is verified, then carries plaintext
    /// (`ByteBuffer`) both ways. A failed handshake is an error naming `server` and the check
    /// that failed; the channel is closed.
    package func makeHandler(host: String, server: String) throws(NATSError) -> any ChannelHandler {
        try TLSClientHandler(context: context, host: host, server: server)
    }
}
