import NexWorkloads
import NATSWire
import NexControl
import NIOCore

/// Connections a deploy may ask for (`trigger_connection`, `host_services`): a URL and a user
/// JWT in the request, the seed only ever in the sealed environment (a Nex 0.2 fix).
enum WorkloadConnection {
    /// The sealed-environment variable holding the seed for `trigger_connection`.
    static let triggerSeedVariable = "NEX_TRIGGER_NATS_USER_SEED"
    /// The sealed-environment variable holding the seed for `host_services`.
    static let hostServicesSeedVariable = "NEX_HOST_SERVICES_NATS_USER_SEED"

    /// A connected client for `settings`, or nil when they name no URL. `field` names the
    /// request field in errors.
    static func connect(_ settings: NATSConnectionSettings?, field: String, seedVariable: String,
                        environment: [String: String], name: String,
                        eventLoop: any EventLoop) async throws -> NATSClient? {
        guard let settings, let url = settings.natsURL, !url.isEmpty else { return nil }
        if settings.natsUserSeed != nil {
            throw NexControlError.badRequest(
                "\(field).nats_user_seed travels in clear: put the seed in the sealed environment as \(seedVariable)")
        }
        var options = NATSClientOptions(servers: [url])
        options.name = name
        options.eventLoopGroup = eventLoop
        options.maxReconnectAttempts = -1
        if let jwt = settings.natsUserJWT {
            guard let seed = environment[seedVariable] else {
                throw NexControlError.badRequest("\(field) has a JWT but the sealed environment has no \(seedVariable)")
            }
            options.auth = .jwt(jwt, seed: seed)
        } else if let seed = environment[seedVariable] {
            options.auth = .nkey(seed: seed)
        }
        do {
            let client = try NATSClient(options: options)
            try await client.connect()
            return client
        } catch {
            throw NexControlError.badRequest("\(field) \(url.redactingURLCredentials): \("\(error)".redactingURLCredentials)")
        }
    }

    /// The environment a workload sees: without the connection seeds meant for the node.
    static func workloadEnvironment(_ environment: [String: String]) -> [String: String] {
        environment.filter { $0.key != triggerSeedVariable && $0.key != hostServicesSeedVariable }
    }
}
