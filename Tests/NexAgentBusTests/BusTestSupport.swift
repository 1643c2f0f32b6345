import NATSTestSupport
import NATSWire
import NexAgentBus
import NIOCore
import NIOPosix
import Synchronization

/// A running bus with the node's user and some agents registered.
struct TestBus {
    let bus: AgentBus
    let node: NKeyPair
    var agents: [String: NKeyPair] = [:]

    static func start(agents ids: [String] = ["a1", "a2"], limits: BusLimits = BusLimits()) async throws -> TestBus {
        let bus = try AgentBus(limits: limits)
        try await bus.start()
        let node = try NKeyPair.generate(.user)
        await bus.addUser(publicKey: node.publicKey, permissions: .everything)
        var test = TestBus(bus: bus, node: node)
        for id in ids {
            let key = try NKeyPair.generate(.user)
            await bus.addUser(publicKey: key.publicKey, permissions: .agent(id))
            test.agents[id] = key
        }
        return test
    }

    func connectNode() async throws -> NATSClient {
        try await connect(seed: node.seed, name: "node")
    }

    func connectAgent(_ id: String) async throws -> NATSClient {
        try await connect(seed: agents[id]!.seed, name: id, inbox: AgentEnvironment.inboxPrefix(agentID: id))
    }

    func connect(seed: String, name: String, inbox: String = "_INBOX") async throws -> NATSClient {
        var options = NATSClientOptions(servers: [bus.url])
        options.auth = .nkey(seed: seed)
        options.name = name
        options.inboxPrefix = inbox
        options.allowReconnect = false
        options.requestTimeout = .seconds(2)
        let client = try NATSClient(options: options)
        try await client.connect()
        return client
    }
}

/// Starts a ``TestBus`` (see ``TestBus/start(agents:limits:)``), runs `body` with it, and shuts
/// the bus down (awaited) when `body` returns or throws.
func withTestBus<Result>(
    isolation: isolated (any Actor)? = #isolation,
    agents ids: [String] = ["a1", "a2"],
    limits: BusLimits = BusLimits(),
    _ body: (TestBus) async throws -> Result
) async throws -> Result {
    let test = try await TestBus.start(agents: ids, limits: limits)
    return try await withTeardown(isolation: isolation, { await test.bus.shutdown() }) {
        try await body(test)
    }
}


/// Every event of a client, recorded from creation.
final class ClientEvents: Sendable {
    final class Log: Sendable { let events = Mutex<[NATSEvent]>([]) }
    private let log = Log()
    private let task: Task<Void, Never>

    init(_ client: NATSClient) {
        let stream = client.events()
        let log = self.log
        task = Task { for await event in stream { log.events.withLock { $0.append(event) } } }
    }

    deinit { task.cancel() }

    var all: [NATSEvent] { log.events.withLock { $0 } }

    var permissionViolations: [String] {
        all.compactMap { event in
            if case .error(let error) = event, error.code == .permissionViolation { return error.reason }
            return nil
        }
    }
}

/// A raw TCP connection to the bus: what a hostile or broken client would send.
final class RawConnection: Sendable {
    private let channel: any Channel
    private let received = ByteLog()

    final class ByteLog: Sendable {
        let bytes = Mutex<[UInt8]>([])
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received: ByteLog
        init(_ received: ByteLog) { self.received = received }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            received.bytes.withLock { $0.append(contentsOf: buffer.readableBytesView) }
        }
    }

    init(port: Int, autoRead: Bool = true) async throws {
        let received = self.received
        channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: autoRead)
            .channelOption(.socketOption(.so_rcvbuf), value: 4096)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    func send(bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// With autoRead off: reads once (the INFO), then nothing more.
    func readOnce() { channel.read() }

    /// Turns autoRead on: takes everything the bus sent and sends.
    func startReading() async throws {
        try await channel.setOption(.autoRead, value: true).get()
        channel.read()
    }

    /// Sends without waiting for the bytes to be taken (the bus may stop reading or close).
    func sendWithoutWaiting(_ buffer: ByteBuffer) {
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// Sends a signed CONNECT for `key` (after the INFO with its nonce has been read).
    func authenticate(_ key: NKeyPair, then more: String = "") async throws {
        let nonce = try await nonce()
        try await send("CONNECT {\"nkey\":\"\(key.publicKey)\",\"sig\":\"\(key.signNonceBase64URL(nonce))\",\"verbose\":false,\"headers\":true}\r\n" + more)
    }

    /// Bytes received so far.
    var receivedCount: Int { received.bytes.withLock { $0.count } }

    var text: String { received.bytes.withLock { String(decoding: $0, as: UTF8.self) } }
    var isOpen: Bool { channel.isActive }

    /// The nonce from the bus's INFO.
    func nonce() async throws -> String {
        let text = try await waitForValue("INFO with a nonce") { () -> String? in
            guard let start = self.text.firstRange(of: "\"nonce\":\"")?.upperBound else { return nil }
            let rest = self.text[start...]
            guard let end = rest.firstIndex(of: "\"") else { return nil }
            return String(rest[..<end])
        }
        return text
    }

    func waitFor(_ fragment: String) async throws {
        try await NATSTestSupport.waitFor(timeout: .seconds(20), "bus to send \(fragment); got: \(text)") { self.text.contains(fragment) }
    }

    func waitUntilClosed() async throws {
        try await NATSTestSupport.waitFor(timeout: .seconds(20), "bus to close the connection") { !self.channel.isActive }
    }

    func close() async { try? await channel.close() }
}

/// Answers "ok" to every request on `subject` (as the node answers an agent's calls) until the
/// returned task is cancelled; subscribed and flushed before it returns.
func answerOK(on subject: String, with client: NATSClient) async throws -> Task<Void, Never> {
    let served = try await client.subscribe(to: subject)
    try await client.flush()
    return Task {
        for await message in served {
            if let reply = message.replyTo { try? await client.publish("ok", to: reply) }
        }
    }
}
