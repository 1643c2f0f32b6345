import FoundationEssentials
import NATSWire
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The `http` host service's wire: HTTP/1.1 on SwiftNIO, TLS on the system OpenSSL (the same
/// TLS stack as the node's NATS connections, so the node links no second one).
///
/// Each hop is one connection (`Connection: close`) to the address its check pinned, so it
/// goes exactly there; TLS still verifies the URL's host name, against the system trust store
/// or the `ca_file` of the settings.
/// Redirects are followed here, up to `max_redirects`, so each hop is checked. Bodies are read
/// up to `max_response_bytes` and never decompressed.
final class HTTPTransport: Sendable {
    let settings: HostServicesConfiguration.HTTPSettings
    /// Verifies servers against the system store or `ca_file`: loaded at the first https call
    /// (a node whose functions never use https never loads a trust store), then kept.
    private let tls = Mutex<Result<TLSClientFactory, NATSError>?>(nil)

    init(settings: HostServicesConfiguration.HTTPSettings) {
        self.settings = settings
    }

    private func tlsFactory() throws(NATSError) -> TLSClientFactory {
        let caFile = settings.caFile
        return try tls.withLock { loaded in
            if let loaded { return loaded }
            let made = Result { () throws(NATSError) in try TLSClientFactory(NATSTLSOptions(caFile: caFile)) }
            loaded = made
            return made
        }.get()
    }

    /// A hop that did not finish within the call's deadline.
    struct Timeout: Error, CustomStringConvertible {
        var stage: String
        var description: String { "\(stage) timed out" }
    }

    static func isTimeout(_ error: any Error) -> Bool { error is Timeout }

    /// Follows redirects (up to `max_redirects`, each hop checked and pinned), then reads the body.
    func fetch(
        method name: String, url: URL, headers fields: [(String, String)], body: [UInt8]?, deadline: NIODeadline,
        check: @Sendable (URL) async throws(HostServiceFailure) -> [String: String]
    ) async throws -> [UInt8] {
        var url = url
        var method = HTTPMethod(rawValue: name.uppercased())
        var headers = HTTPHeaders(fields)
        var body = body
        var hops = 0
        while true {
            let pin = try await check(url)
            let response = try await exchange(method: method, url: url, headers: headers, body: body, pin: pin,
                                              deadline: deadline)
            let status = Int(response.head.status.code)
            if [301, 302, 303, 307, 308].contains(status), hops < settings.maxRedirects,
               let location = response.head.headers.first(name: "Location"),
               let next = URL(string: location, relativeTo: url)?.absoluteURL
            {
                hops += 1
                guard let scheme = next.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
                    throw HTTPHostService.failure(502, "http redirect from \(url.absoluteString) to unsupported URL \(location)")
                }
                if status == 303 || ((status == 301 || status == 302) && method != .GET && method != .HEAD) {
                    method = method == .HEAD ? .HEAD : .GET
                    body = nil
                    headers.remove(name: "Content-Type")
                }
                if next.host?.lowercased() != url.host?.lowercased() {
                    for name in HTTPHostService.credentialHeaders { headers.remove(name: name) }
                }
                url = next
                continue
            }
            return HTTPHostService.encode(
                status: status, headers: response.head.headers.map { ($0.name, $0.value) }, body: response.body)
        }
    }

    /// One request on a connection of its own to the pinned address (or, with nothing pinned,
    /// the first address the node's own resolver gives), closed when the hop is over or the
    /// caller is cancelled.
    private func exchange(
        method: HTTPMethod, url: URL, headers: HTTPHeaders, body: [UInt8]?, pin: [String: String], deadline: NIODeadline
    ) async throws -> HTTPResponseCollector.Response {
        var host = url.host ?? ""
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let secure = url.scheme?.lowercased() == "https"
        let port = url.port ?? (secure ? 443 : 80)
        let address = try await connectAddress(host: host, pin: pin)
        let tlsFactory = secure ? try self.tlsFactory() : nil

        let collector = HTTPResponseCollector(maxBodyBytes: settings.maxResponseBytes)
        let remaining = deadline - .now()
        guard remaining > .zero else { throw Timeout(stage: "connect to \(host)") }
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(remaining)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tlsFactory {
                            try channel.pipeline.syncOperations.addHandler(
                                tlsFactory.makeHandler(host: host, server: "\(host):\(port)"))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(collector)
                    }
                }
                .connect(host: address, port: port)
                .get()
        } catch ChannelError.connectTimeout {
            throw Timeout(stage: "connect to \(host)")
        }

        var head = HTTPRequestHead(version: .http1_1, method: method, uri: Self.target(of: url), headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: url.port.map { "\(Self.hostHeader(host)):\($0)" } ?? Self.hostHeader(host))
        head.headers.replaceOrAdd(name: "Connection", value: "close")
        if let body { head.headers.replaceOrAdd(name: "Content-Length", value: String(body.count)) }
        if head.headers["User-Agent"].isEmpty { head.headers.add(name: "User-Agent", value: "nex-node") }

        return try await withTaskCancellationHandler {
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            let scheduled = channel.eventLoop.scheduleTask(deadline: deadline) {
                collector.fail(channel: channel, Timeout(stage: "response from \(host)"))
            }
            defer { scheduled.cancel() }
            return try await collector.response(on: channel)
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// Where to connect: the pinned address of `host`, the host itself when it is an address
    /// literal, or the first address the node's resolver pool gives (operator-allowed hosts).
    private func connectAddress(host: String, pin: [String: String]) async throws -> String {
        if let pinned = pin[host] ?? pin[host.lowercased()] { return pinned }
        if let literal = HTTPHostResolver.literal(host) { return literal.text }
        return try await HTTPHostResolver.resolve(host)[0].text
    }

    /// The request target: path (at least `/`) and query, as sent.
    static func target(of url: URL) -> String {
        let path = url.path(percentEncoded: true)
        let query = url.query(percentEncoded: true).map { "?\($0)" } ?? ""
        return (path.isEmpty ? "/" : path) + query
    }

    /// An IPv6 literal goes in brackets in `Host`.
    static func hostHeader(_ host: String) -> String {
        host.contains(":") ? "[\(host)]" : host
    }
}

/// Collects one HTTP response (head and body, the body up to a limit) and completes the
/// promise it is given when the response ends, the connection closes or fails. Lives on its
/// channel's event loop.
final class HTTPResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    struct Response: Sendable {
        var head: HTTPResponseHead
        var body: [UInt8]
    }

    private let maxBodyBytes: Int
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    /// Set once the response is over, until a promise takes it.
    private var result: Result<Response, any Error>?
    private var promise: EventLoopPromise<Response>?

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    /// The response, once it is over (or failed); the connection is then closed.
    func response(on channel: any Channel) async throws -> Response {
        let promise = channel.eventLoop.makePromise(of: Response.self)
        channel.eventLoop.execute {
            if let result = self.result { promise.completeWith(result) } else { self.promise = promise }
        }
        return try await promise.futureResult.get()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard result == nil else { return }
        switch unwrapInboundIn(data) {
        case .head(let received):
            head = received
        case .body(let part):
            guard body.count + part.readableBytes <= maxBodyBytes else {
                finish(context.channel, .failure(NIOTooManyBytesError(maxBytes: maxBodyBytes)))
                return
            }
            body.append(contentsOf: part.readableBytesView)
        case .end:
            if let head { finish(context.channel, .success(Response(head: head, body: body))) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context.channel, .failure(ChannelError.eof))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(context.channel, .failure(error))
    }

    /// Fails the response (e.g. its deadline passed) from any thread.
    func fail(channel: any Channel, _ error: any Error) {
        channel.eventLoop.execute { self.finish(channel, .failure(error)) }
    }

    private func finish(_ channel: any Channel, _ outcome: Result<Response, any Error>) {
        guard result == nil else { return }
        result = outcome
        promise?.completeWith(outcome)
        promise = nil
        channel.close(promise: nil)
    }
}
