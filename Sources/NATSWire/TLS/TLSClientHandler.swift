import COpenSSL
import NIOCore

/// TLS on the system OpenSSL through memory BIOs: ciphertext from the socket goes into the
/// read BIO, OpenSSL's output is taken from the write BIO and written to the socket.
///
/// Added in front of the protocol handler either at connect (`handshake_first`) or after
/// the server's plain `INFO`. Fires ``TLSClientHandler/HandshakeCompleted`` once the server is
/// verified; writes made before that are held and sent encrypted afterwards.
final class TLSClientHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// User inbound event: the TLS handshake finished and the peer is verified.
    struct HandshakeCompleted {}

    private let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    private let server: String
    private var handshakeDone = false
    private var started = false
    private var held: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private let retainedContext: TLSContext

    init(context: TLSContext, host: String, server: String) throws(NATSError) {
        guard let ssl = SSL_new(context.context), let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem())
        else { throw NATSError.tlsFailed(server: server, reason: "cannot create a TLS session: \(TLSContext.lastError())") }
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        self.server = server
        self.retainedContext = context
        SSL_set_bio(ssl, readBIO, writeBIO)  // the session owns the BIOs now
        SSL_set_connect_state(ssl)
        let name = context.options.serverName ?? host
        let isAddress = name.contains(":") || name.split(separator: ".").allSatisfy { UInt8($0) != nil }
        if !isAddress { _ = copenssl_set_tlsext_host_name(ssl, name) }
        if context.options.verifyHostname {
            let ok = isAddress
                ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
                : SSL_set1_host(ssl, name)
            guard ok == 1 else { throw NATSError.tlsFailed(server: server, reason: "cannot verify against name '\(name)'") }
        }
    }

    deinit { SSL_free(ssl) }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        advanceHandshake(context)
    }

    private func advanceHandshake(_ context: ChannelHandlerContext) {
        // The error queue is per thread and shared by every connection on this event loop:
        // it must be empty before each call, or SSL_get_error reports another session's error.
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        sendCiphertext(context)
        if result == 1 {
            handshakeDone = true
            context.fireUserInboundEventTriggered(HandshakeCompleted())
            let pending = held
            held = []
            for (data, promise) in pending { encrypt(data, promise: promise, context: context) }
            context.flush()
            return
        }
        let error = SSL_get_error(ssl, result)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return }
        fail(context, reason: handshakeFailure(error))
    }

    /// Says which check failed: the verification result when there is one, else OpenSSL's error.
    private func handshakeFailure(_ error: Int32) -> String {
        let verify = SSL_get_verify_result(ssl)
        if verify != X509_V_OK {
            let text = String(cString: X509_verify_cert_error_string(verify))
            ERR_clear_error()
            return "certificate verification failed: \(text)"
        }
        if error == SSL_ERROR_SYSCALL || error == SSL_ERROR_ZERO_RETURN { return "the server closed the connection during the TLS handshake" }
        return "TLS handshake failed: \(TLSContext.lastError())"
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        while buffer.readableBytes > 0 {
            let written = buffer.withUnsafeReadableBytes { BIO_write(readBIO, $0.baseAddress, Int32(min($0.count, Int(Int32.max)))) }
            guard written > 0 else { return fail(context, reason: "cannot buffer TLS input") }
            buffer.moveReaderIndex(forwardBy: Int(written))
        }
        if !handshakeDone {
            advanceHandshake(context)
            guard handshakeDone else { return }
        }
        while true {
            var plain = context.channel.allocator.buffer(capacity: 16 * 1024)
            var result: Int32 = 0
            ERR_clear_error()
            plain.writeWithUnsafeMutableBytes(minimumWritableBytes: 16 * 1024) { out in
                result = SSL_read(ssl, out.baseAddress, Int32(out.count))
                return Int(max(0, result))
            }
            if result > 0 {
                context.fireChannelRead(wrapInboundOut(plain))
                continue
            }
            let error = SSL_get_error(ssl, result)
            if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_NONE { break }
            if error == SSL_ERROR_ZERO_RETURN {
                context.close(promise: nil)
                break
            }
            return fail(context, reason: "TLS read failed: \(TLSContext.lastError())")
        }
        sendCiphertext(context)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let plain = unwrapOutboundIn(data)
        guard handshakeDone else {
            held.append((plain, promise))
            return
        }
        encrypt(plain, promise: promise, context: context)
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
    }

    private func encrypt(_ plain: ByteBuffer, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext) {
        var plain = plain
        while plain.readableBytes > 0 {
            ERR_clear_error()
            let written = plain.withUnsafeReadableBytes { SSL_write(ssl, $0.baseAddress, Int32(min($0.count, 1 << 30))) }
            guard written > 0 else {
                promise?.fail(NATSError.tlsFailed(server: server, reason: "TLS write failed: \(TLSContext.lastError())"))
                return fail(context, reason: "TLS write failed")
            }
            plain.moveReaderIndex(forwardBy: Int(written))
        }
        sendCiphertext(context, promise: promise, flush: false)
    }

    /// Moves what OpenSSL produced to the socket.
    private func sendCiphertext(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil, flush: Bool = true) {
        let pending = Int(BIO_ctrl_pending(writeBIO))
        guard pending > 0 else {
            promise?.succeed(())
            return
        }
        var out = context.channel.allocator.buffer(capacity: pending)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { raw in
            Int(max(0, BIO_read(writeBIO, raw.baseAddress, Int32(pending))))
        }
        context.write(wrapOutboundOut(out), promise: promise)
        if flush { context.flush() }
    }

    private func fail(_ context: ChannelHandlerContext, reason: String) {
        let error = NATSError.tlsFailed(server: server, reason: reason)
        for (_, promise) in held { promise?.fail(error) }
        held = []
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}
