import NATSWire

/// Starts a real nats-server, runs `body` with it, and stops the server (SIGTERM, waited
/// for) when `body` returns or throws: the `app.test { }` shape of HummingbirdTesting.
///
///     try await withNATSServer(jetStream: false) { server in
///         try await withConnectedClient(to: server) { client in ... }
///     }
///
/// The parameters are those of ``NATSServer/start(config:jetStream:monitoring:arguments:startupTimeout:)``.
public func withNATSServer<Result>(
    isolation: isolated (any Actor)? = #isolation,
    config: String? = nil,
    jetStream: Bool = true,
    monitoring: Bool = false,
    arguments: [String] = [],
    _ body: (NATSServer) async throws -> Result
) async throws -> Result {
    let server = try await NATSServer.start(
        config: config, jetStream: jetStream, monitoring: monitoring, arguments: arguments)
    return try await withTeardown(isolation: isolation, { server.stop() }) {
        try await body(server)
    }
}

extension NATSServer {
    /// Client options for tests against this server: its URL and quick reconnects (50 ms
    /// first wait, 200 ms at most, 20 ms jitter), so reconnect tests do not wait on defaults.
    public func testClientOptions() -> NATSClientOptions {
        var options = NATSClientOptions(servers: [url])
        options.reconnectWait = .milliseconds(50)
        options.maxReconnectWait = .milliseconds(200)
        options.reconnectJitter = .milliseconds(20)
        return options
    }

    /// A client connected to this server with ``testClientOptions()`` changed by `configure`.
    /// The caller closes it; prefer ``withConnectedClient(to:configure:_:)``, which does.
    public func connectedClient(configure: (inout NATSClientOptions) -> Void = { _ in }) async throws -> NATSClient {
        var options = testClientOptions()
        configure(&options)
        return try await NATSClient.connected(options: options)
    }
}

/// Connects a client to `server` (``NATSServer/testClientOptions()`` changed by `configure`),
/// runs `body` with it, and awaits `close()` when `body` returns or throws.
public func withConnectedClient<Result>(
    isolation: isolated (any Actor)? = #isolation,
    to server: NATSServer,
    configure: (inout NATSClientOptions) -> Void = { _ in },
    _ body: (NATSClient) async throws -> Result
) async throws -> Result {
    var options = server.testClientOptions()
    configure(&options)
    let client = try await NATSClient.connected(options: options)
    return try await withTeardown(isolation: isolation, { await client.close() }) {
        try await body(client)
    }
}

/// Connects a client with `options`, runs `body` with it, and awaits `close()` when `body`
/// returns or throws.
public func withConnectedClient<Result>(
    isolation: isolated (any Actor)? = #isolation,
    options: NATSClientOptions,
    _ body: (NATSClient) async throws -> Result
) async throws -> Result {
    let client = try await NATSClient.connected(options: options)
    return try await withTeardown(isolation: isolation, { await client.close() }) {
        try await body(client)
    }
}

extension NATSClient {
    /// A client with `options`, connected; closed again (awaited) when connecting fails.
    static func connected(options: NATSClientOptions) async throws -> NATSClient {
        let client = try NATSClient(options: options)
        do {
            try await client.connect()
        } catch {
            await client.close()
            throw error
        }
        return client
    }
}
