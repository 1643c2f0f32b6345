import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Serves `GET /metrics` (Prometheus's text format, from `render`) over HTTP/1.1 on one
/// address; anything else gets 404 or 405. A `Service`: it listens until a graceful shutdown or
/// cancellation.
final class MetricsServer: Service {
    private let host: String
    private let port: Int
    private let logger: Logger
    private let render: @Sendable () async -> [UInt8]

    init(host: String, port: Int, logger: Logger, render: @escaping @Sendable () async -> [UInt8]) {
        self.host = host
        self.port = port
        self.logger = logger
        self.render = render
    }

    func run() async throws {
        let render = self.render
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 32)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(render: render))
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            throw NodeStartError("metrics: cannot listen on \(host):\(port): \(error)")
        }
        let address = channel.localAddress
        let shown = address?.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? host
        logger.info("metrics served", metadata: ["url": "http://\(shown):\(address?.port ?? port)/metrics"])
        await withGracefulShutdownHandler {
            try? await withTaskCancellationHandler {
                try await channel.closeFuture.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
    }
}

/// One connection's requests: `GET /metrics` (a query string is ignored) answers the metrics;
/// other paths 404, other methods 405. Bodies of requests are ignored.
private final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () async -> [UInt8]
    private var request: HTTPRequestHead?

    init(render: @escaping @Sendable () async -> [UInt8]) { self.render = render }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let keepAlive = head.isKeepAlive
            guard head.method == .GET || head.method == .HEAD else {
                respond(context, status: .methodNotAllowed, body: Array("only GET\n".utf8), keepAlive: keepAlive)
                return
            }
            guard path == "/metrics" else {
                respond(context, status: .notFound, body: Array("not found: try /metrics\n".utf8), keepAlive: keepAlive)
                return
            }
            let isHead = head.method == .HEAD
            let promise = context.eventLoop.makePromise(of: [UInt8].self)
            promise.completeWithTask { [render] in await render() }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            promise.futureResult.whenSuccess { body in
                let (handler, context) = bound.value
                handler.respond(context, status: .ok, body: isHead ? [] : body, keepAlive: keepAlive,
                                contentType: "text/plain; version=0.0.4; charset=utf-8")
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, body: [UInt8], keepAlive: Bool,
                         contentType: String = "text/plain; charset=utf-8") {
        var headers = HTTPHeaders([("content-type", contentType), ("content-length", String(body.count))])
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}
