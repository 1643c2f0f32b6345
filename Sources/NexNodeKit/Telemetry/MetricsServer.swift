import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Serves `GET /metrics` (Prometheus's text format, from `render`) over HTTP/1.1 on one
/// address; anything else gets 404 or 405. A `Service`: it listens until a graceful shutdown or
/// cancellation.
///
/// Whoever reaches the address (on loopback: the node's host, and workloads on the host's
/// network) gets little to push on: at most ``maxConnections`` connections (more are closed at
/// once), each closed after ``idleTimeout`` without a request, and the text rendered at most
/// once a second however often it is asked for.
final class MetricsServer: Service {
    static let maxConnections = 16
    static let idleTimeout = TimeAmount.seconds(10)
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
        let render = MetricsRenderCache(render: self.render)
        let connections = ConnectionCount()
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 32)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    guard connections.open(limit: Self.maxConnections) else { return channel.close() }
                    channel.closeFuture.whenComplete { _ in connections.closed() }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(render: { await render.text() }))
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

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

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

/// The rendered metrics, kept for a second: scrapes in a burst share one rendering.
actor MetricsRenderCache {
    private let render: @Sendable () async -> [UInt8]
    private var last: (text: [UInt8], at: ContinuousClock.Instant)?

    init(render: @escaping @Sendable () async -> [UInt8]) { self.render = render }

    func text() async -> [UInt8] {
        if let last, last.at.duration(to: .now) < .seconds(1) { return last.text }
        let text = await render()
        last = (text, .now)
        return text
    }
}

/// Connections open now, bounded.
final class ConnectionCount: Sendable {
    private let count = Atomic(0)

    /// Counts one more unless `limit` are open already.
    func open(limit: Int) -> Bool {
        if count.wrappingAdd(1, ordering: .relaxed).newValue <= limit { return true }
        count.wrappingSubtract(1, ordering: .relaxed)
        return false
    }

    func closed() { count.wrappingSubtract(1, ordering: .relaxed) }
}
