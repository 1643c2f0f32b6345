/// TLS settings of a ``NATSClient``, on the system OpenSSL.
///
/// TLS is used when a URL says `tls://`, when these options are set, or when the server
/// requires it (`tls_required`); in that last case the defaults below apply.
public struct NATSTLSOptions: Sendable, Equatable {
    /// PEM file of the certificate authorities to trust; nil means the system store.
    public var caFile: String?
    /// PEM client certificate (chain) for mutual TLS; needs ``keyFile``.
    public var certificateFile: String?
    /// PEM private key of ``certificateFile``.
    public var keyFile: String?
    /// The name to verify in the server certificate (and send as SNI); nil means the URL's host.
    public var serverName: String?
    /// Check that the certificate names the server. Turn off only for testing.
    public var verifyHostname = true
    /// Start TLS before the server's `INFO` (the server's `handshake_first` mode).
    public var handshakeFirst = false

    /// TLS settings; every file is a PEM path, loaded when the client is created (a file that
    /// does not load makes ``NATSClient/init(options:)`` throw ``NATSError/tlsFailed(server:reason:)``).
    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
                serverName: String? = nil, handshakeFirst: Bool = false) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.handshakeFirst = handshakeFirst
    }
}
