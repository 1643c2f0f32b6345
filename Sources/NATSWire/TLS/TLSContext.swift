import COpenSSL

/// An OpenSSL client context (`SSL_CTX`) configured once from ``NATSTLSOptions``: TLS 1.2 or
/// newer, peer verification against the given CA file or the system store, and an optional
/// client certificate. Immutable after creation, so connections on any thread may share it.
final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    let options: NATSTLSOptions

    init(_ options: NATSTLSOptions) throws(NATSError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw NATSError.tlsFailed(server: "", reason: "cannot create an OpenSSL context: \(TLSContext.lastError())")
        }
        self.context = context
        self.options = options
        _ = copenssl_ctx_set_min_proto_version(context, copenssl_tls1_2_version())
        _ = copenssl_ctx_set_mode(context, copenssl_mode_release_buffers())
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        if let caFile = options.caFile {
            guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                throw NATSError.tlsFailed(server: "", reason: "cannot load CA file \(caFile): \(TLSContext.lastError())")
            }
        } else {
            SSL_CTX_set_default_verify_paths(context)
        }
        switch (options.certificateFile, options.keyFile) {
        case (nil, nil):
            break
        case (let certificate?, let key?):
            guard SSL_CTX_use_certificate_chain_file(context, certificate) == 1 else {
                throw NATSError.tlsFailed(server: "", reason: "cannot load client certificate \(certificate): \(TLSContext.lastError())")
            }
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else {
                throw NATSError.tlsFailed(server: "", reason: "cannot load client key \(key): \(TLSContext.lastError())")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw NATSError.tlsFailed(server: "", reason: "client key \(key) does not match certificate \(certificate)")
            }
        default:
            throw NATSError.tlsFailed(server: "", reason: "a client certificate needs both certificateFile and keyFile")
        }
    }

    deinit { SSL_CTX_free(context) }

    /// The oldest queued OpenSSL error as text (and clears the queue).
    static func lastError() -> String {
        var message = "unknown OpenSSL error"
        var code = ERR_get_error()
        while code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            message = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            code = ERR_get_error()
            if code == 0 { break }
        }
        return message
    }
}
