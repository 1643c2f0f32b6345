import FoundationEssentials
import Logging
import NATSWire
import Tracing
import NIOCore

/// Serves one node's `$NEX` subjects on a NATSWire connection.
///
/// Every request gets a reply: the handler's answer, or an error envelope naming what was
/// wrong (malformed JSON, wrong types, an empty or oversized body, a refused request). It stays
/// silent only where Nex 0.2 is silent by design: a workload ping or auction that does not
/// concern this node. Requests are handled concurrently; a slow deploy does not hold up pings.
public struct ControlServer: Sendable {
    /// Bodies larger than this are refused before decoding.
    public static let maxRequestBytes = 1024 * 1024

    /// The node id (its public server nkey) whose subjects are served.
    public let nodeID: String
    private let client: NATSClient
    private let handler: any NodeControlHandler
    private let logger: Logger

    /// A server for node `nodeID` on `client`; `handler` answers the requests.
    public init(nodeID: String, client: NATSClient, handler: any NodeControlHandler, logger: Logger) {
        self.nodeID = nodeID
        self.client = client
        self.handler = handler
        self.logger = logger
    }

    /// The subjects served, each with the route that handles it.
    enum Route: CaseIterable {
        case pingAll, pingNode, workloadPing, auction, info, deploy, stop, lameDuck

        func subject(node: String) -> String {
            switch self {
            case .pingAll: return NexSubject.ping()
            case .pingNode: return NexSubject.ping(node: node)
            case .workloadPing: return NexSubject.workloadPing(namespace: ">")
            case .auction: return NexSubject.auction
            case .info: return NexSubject.info(namespace: "*", node: node)
            case .deploy: return NexSubject.deploy(namespace: "*", node: node)
            case .stop: return NexSubject.stop(namespace: "*", node: node)
            case .lameDuck: return NexSubject.lameDuck(node: node)
            }
        }
    }

    /// Subscribes every subject and serves until the task is cancelled or the connection closes.
    /// Subscriptions survive reconnects (the client re-sends them).
    public func run() async throws {
        var subscriptions: [(Route, NATSSubscription)] = []
        for route in Route.allCases {
            subscriptions.append((route, try await client.subscribe(to: route.subject(node: nodeID), pendingMessages: 4096)))
        }
        try await client.flush()
        try await withThrowingDiscardingTaskGroup { group in
            for (route, subscription) in subscriptions {
                group.addTask {
                    await withDiscardingTaskGroup { requests in
                        for await message in subscription {
                            requests.addTask {
                                // A server span, child of the requester's (its `traceparent`).
                                await withSpan(NexClient.operation(message.subject), context: .extracted(from: message),
                                               ofKind: .server) { span in
                                    span.attributes["messaging.destination.name"] = message.subject
                                    span.attributes["nex.node_id"] = nodeID
                                    await serve(route, message)
                                }
                            }
                        }
                    }
                }
            }
        }
        for (_, subscription) in subscriptions { try? await subscription.unsubscribe() }
    }

    /// Handles one request and replies.
    func serve(_ route: Route, _ message: NATSMessage) async {
        let tokens = message.subject.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let reply: ByteBuffer?
        switch route {
        case .pingAll, .pingNode:
            reply = await answer(ControlResponseType.ping) {
                try Self.checkNoBody(message)
                return await handler.ping()
            }
        case .workloadPing:
            // $NEX.WPING.<ns>[.<id|name>]
            guard tokens.count >= 3 else {
                reply = Self.failure(ControlResponseType.ping, "missing namespace in \(message.subject)")
                break
            }
            do {
                try NexSubject.validateNamespace(tokens[2])
                try Self.checkNoBody(message)
            } catch {
                reply = Self.failure(ControlResponseType.ping, "\(error)")
                break
            }
            reply = await handler.workloadPing(namespace: tokens[2], workload: tokens.count > 3 ? tokens[3] : nil)
                .map { Self.encode(type: ControlResponseType.ping, $0) }
        case .auction:
            do {
                let request = try Self.decode(AuctionRequest.self, from: message, allowEmpty: true) ?? AuctionRequest()
                reply = await handler.auction(request).map { Self.encode(type: ControlResponseType.auction, $0) }
            } catch {
                reply = Self.failure(ControlResponseType.auction, "\(error)")
            }
        case .info:
            reply = await answer(ControlResponseType.info) {
                try NexSubject.validateNamespace(tokens[2])
                try Self.checkNoBody(message)
                return try await handler.info(namespace: tokens[2])
            }
        case .deploy:
            reply = await answer(ControlResponseType.run) {
                try NexSubject.validateNamespace(tokens[2])
                let request = try Self.require(DeployRequest.self, from: message)
                return try await handler.deploy(namespace: tokens[2], request: request)
            }
        case .stop:
            reply = await answer(ControlResponseType.stop) {
                try NexSubject.validateNamespace(tokens[2])
                let request = try Self.require(StopRequest.self, from: message)
                return try await handler.stop(namespace: tokens[2], request: request)
            }
        case .lameDuck:
            reply = await answer(ControlResponseType.lameDuck) {
                let request = try Self.decode(LameDuckRequest.self, from: message, allowEmpty: true) ?? LameDuckRequest()
                _ = try request.parsedDelay()
                return try await handler.lameDuck(request)
            }
        }
        guard let reply else { return }
        guard let replyTo = message.replyTo else {
            logger.debug("control request without reply subject", metadata: ["subject": "\(message.subject)"])
            return
        }
        do {
            try await client.publish(reply, to: replyTo)
        } catch {
            logger.warning("control reply failed", metadata: ["subject": "\(message.subject)", "error": "\(error)"])
        }
    }

    private func answer<T: Codable & Sendable>(_ type: String, _ body: () async throws -> T) async -> ByteBuffer {
        do {
            return Self.encode(type: type, try await body())
        } catch {
            logger.info("control request refused", metadata: ["type": "\(type)", "error": "\(error)"])
            return Self.failure(type, "\(error)")
        }
    }

    static func encode<T: Codable & Sendable>(type: String, _ data: T) -> ByteBuffer {
        do {
            return ByteBuffer(bytes: try Self.encoder.encode(ControlEnvelope(type: type, data: data)))
        } catch {
            return failure(type, "could not encode the reply: \(error)")
        }
    }

    static func failure(_ type: String, _ reason: String) -> ByteBuffer {
        // Encoding two strings cannot fail.
        ByteBuffer(bytes: (try? Self.encoder.encode(ControlFailure(type: type, error: reason))) ?? Data())
    }

    /// Decodes a request body, or `nil` for an empty body when that is allowed.
    static func decode<T: Decodable>(_ type: T.Type, from message: NATSMessage, allowEmpty: Bool) throws -> T? {
        let size = message.payload.readableBytes
        guard size <= maxRequestBytes else {
            throw NexControlError.badRequest("request body of \(size) bytes exceeds the limit of \(maxRequestBytes)")
        }
        if size == 0 {
            if allowEmpty { return nil }
            throw NexControlError.badRequest("empty request body: expected a JSON \(T.self)")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(message.payload.readableBytesView))
        } catch let error as DecodingError {
            throw NexControlError.badRequest("invalid \(T.self) on \(message.subject): \(error.requestDescription)")
        }
    }

    /// Requests that take no body (ping, workload ping, info, lame duck) accept an empty body or
    /// a JSON object, which is ignored; anything else is refused, so a confused client learns why.
    static func checkNoBody(_ message: NATSMessage) throws {
        let size = message.payload.readableBytes
        guard size <= maxRequestBytes else {
            throw NexControlError.badRequest("request body of \(size) bytes exceeds the limit of \(maxRequestBytes)")
        }
        guard size > 0 else { return }
        do {
            _ = try JSONDecoder().decode([String: JSONValue].self, from: Data(message.payload.readableBytesView))
        } catch let error as DecodingError {
            throw NexControlError.badRequest("\(message.subject) takes no body (or a JSON object): \(error.requestDescription)")
        }
    }

    static func require<T: Decodable>(_ type: T.Type, from message: NATSMessage) throws -> T {
        try decode(type, from: message, allowEmpty: false)!
    }

    /// A one-line account of a JSON decoding failure, naming the field.
    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
