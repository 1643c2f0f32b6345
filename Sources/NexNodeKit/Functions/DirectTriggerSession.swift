#if canImport(Glibc)
import Glibc
#endif
import CProcessSpawn
import FoundationEssentials
import Logging
import NATSWire
import NexAgentBus
import NIOCore
import NIOPosix
import Synchronization

/// A function's agent that can serve its triggers itself: its id, the public key it will sign
/// in with, and its socket channel.
struct DirectTriggerAgent: Sendable {
    let id: String
    let key: String
    let channel: AgentSocketChannel
}

/// Keeps a function's agent serving the function's triggers on a connection of its own
/// (`direct_triggers`), and tells its ``FunctionTrigger`` when the node must relay instead.
///
/// Setting an agent up takes a JWT (``TriggerCredentials``), a TCP connection the node opens
/// to the server its workload-plane connection uses, handed over the agent's socket channel,
/// and `agentint.<id>.triggers`. It is renewed at two thirds of the JWT's life. While no agent
/// serves (before the first setup, after a failure or a lost connection, while the function
/// restarts) the node relays; a failed setup is retried after 5 s, doubling up to 5 minutes,
/// and a lost connection after 1 s, doubling up to a minute until one lasts to its renewal
/// (an agent that drops its connection on purpose cannot make the node set up without pause).
///
/// Events are handled one at a time by ``run()``'s loop, in order.
final class DirectTriggerSession: Sendable {
    enum Event: Sendable {
        /// The function runs on this agent now; nil: on none, or on one that cannot serve.
        case agent(DirectTriggerAgent?)
        /// A renewal or retry timer of the given generation fired.
        case timer(generation: Int)
        /// The agent's own connection closed.
        case lost(agentID: String)
    }

    private let credentials: TriggerCredentials
    private let connection: NATSClient
    private let bus: BusLink
    private let subjects: [String]
    private let queue: String
    private let name: String
    private let logger: Logger
    /// Turns the node's own trigger subscriptions on or off (set by ``relay(through:)``).
    private let relaySwitch = Mutex<(@Sendable (Bool) async -> Void)?>(nil)
    private let events: AsyncStream<Event>
    private let sink: AsyncStream<Event>.Continuation
    private let loop = Mutex<Task<Void, Never>?>(nil)
    /// A `.lost` is waiting in the stream: more are not queued.
    private let lossPending = Atomic(false)

    init(credentials: TriggerCredentials, connection: NATSClient, bus: BusLink, subjects: [String], queue: String,
         name: String, logger: Logger) {
        self.credentials = credentials
        self.connection = connection
        self.bus = bus
        self.subjects = subjects
        self.queue = queue
        self.name = name
        self.logger = logger
        (events, sink) = AsyncStream.makeStream(of: Event.self)
    }

    /// What turns the node's own subscriptions on (`true`) or off; set before ``start()``.
    func relay(through relaySwitch: @escaping @Sendable (Bool) async -> Void) {
        self.relaySwitch.withLock { $0 = relaySwitch }
    }

    private func relay(_ on: Bool) async {
        await relaySwitch.withLock({ $0 })?(on)
    }

    func start() {
        loop.withLock { $0 = Task { await self.run() } }
    }

    func send(_ event: Event) {
        if case .lost = event, lossPending.exchange(true, ordering: .relaxed) { return }
        sink.yield(event)
    }

    /// Ends the loop (and its timers); the agent's connection is the agent's to close.
    func stop() async {
        sink.finish()
        let task = loop.withLock { $0 }
        task?.cancel()
        await task?.value
    }

    private func run() async {
        var agent: DirectTriggerAgent?
        var generation = 0
        var failures = 0, losses = 0
        var timer: Task<Void, Never>?
        defer { timer?.cancel() }
        func schedule(after delay: Duration) {
            timer?.cancel()
            let due = generation
            timer = Task { [sink] in
                guard (try? await Task.sleep(for: delay)) != nil else { return }
                sink.yield(.timer(generation: due))
            }
        }
        func attempt(_ agent: DirectTriggerAgent) async {
            do {
                try await setUp(agent)
                failures = 0
                await relay(false)
                schedule(after: credentials.lifetime * 2 / 3)
            } catch {
                failures += 1
                await relay(true)
                let delay = Duration.seconds(min(5 << min(failures - 1, 6), 300))
                logger.warning("the function's agent does not serve its triggers; the node relays them", metadata: [
                    "function": "\(name)", "agent": "\(agent.id)", "error": "\(error)", "retry_in": "\(delay)"])
                schedule(after: delay)
            }
        }
        for await event in events {
            switch event {
            case .agent(let next):
                agent = next
                generation += 1
                failures = 0
                timer?.cancel()
                if let next { await attempt(next) } else { await relay(true) }
            case .timer(let due):
                guard due == generation, let agent else { continue }
                let renewal = failures == 0
                await attempt(agent)
                if renewal && failures == 0 { losses = 0 }  // served a whole term
            case .lost(let agentID):
                lossPending.store(false, ordering: .relaxed)
                guard agent?.id == agentID else { continue }
                generation += 1
                losses += 1
                await relay(true)
                let delay = Duration.seconds(min(1 << min(losses - 1, 6), 60))
                logger.warning("the function's trigger connection closed; the node relays until it is set up again",
                               metadata: ["function": "\(name)", "agent": "\(agentID)", "retry_in": "\(delay)"])
                schedule(after: delay)
            }
        }
    }

    /// Signs a JWT for the agent's key, connects a socket to the server, hands it over, and
    /// asks the agent to serve; throws saying what failed.
    private func setUp(_ agent: DirectTriggerAgent) async throws {
        guard let address = connection.connectedAddress else {
            throw DirectTriggerSetupError("the node's workload-plane connection is down")
        }
        guard !address.tls else {
            throw DirectTriggerSetupError("the server takes TLS connections, which agents' trigger connections do not make")
        }
        // A server that checks no credentials would give the agent everything.
        guard let info = connection.serverInfo, info.authRequired, info.nonce != nil else {
            throw DirectTriggerSetupError("the server does not authenticate clients by nkey: a JWT would bound nothing")
        }
        let socket = try await Self.dial(address.host, address.port)
        defer { close(socket) }
        var text = [CChar](repeating: 0, count: 64)
        let source = nex_local_address(socket, &text, Int32(text.count)) == 0
            ? String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
        let jwt = try credentials.jwt(for: agent.key, subjects: subjects, queue: queue, name: "nex triggers \(name)",
                                      source: source)
        try agent.channel.send(socket)
        let server = "nats://\(address.host.contains(":") ? "[\(address.host)]" : address.host):\(address.port)"
        let setup = AgentTriggerSetup(jwt: jwt.token, server: server, subjects: subjects, queue: queue)
        let reply = try await bus.request(ByteBuffer(bytes: try JSONEncoder().encode(setup)),
                                          to: AgentBusSubject.toAgent(agent.id, AgentVerb.triggers), timeout: .seconds(10))
        let response = try JSONDecoder().decode(AgentTriggerSetupResponse.self, from: Data(reply.payload.readableBytesView))
        guard response.serving else { throw DirectTriggerSetupError("agent \(agent.id): \(response.message)") }
    }

    /// A blocking TCP connect (at most 2 s per address), on NIO's thread pool.
    private static func dial(_ host: String, _ port: Int) async throws -> Int32 {
        try await NIOThreadPool.singleton.runIfActive {
            var socket: Int32 = -1
            let error = nex_dial_tcp(host, Int32(port), 2000, &socket)
            guard error == 0 else {
                throw DirectTriggerSetupError("cannot connect to \(host):\(port): \(String(cString: strerror(error)))")
            }
            return socket
        }
    }
}
