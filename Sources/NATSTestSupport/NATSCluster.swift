import Foundation

/// Real nats-servers routed into one cluster on loopback, for tests of what a fleet does when
/// a server goes away.
///
/// Each server picks its own client port (`-p -1`) and reports it in its ports file. Clustered
/// JetStream wants configured routes on every server, the first too, so the first server's
/// route port is chosen here (a port the kernel hands out, released, given to the server;
/// if something took it meanwhile the server fails to bind and is started again on
/// another: a lost race costs a retry, never a wrong server) and the first server routes to
/// itself (ignored); the others listen on ports of their own choosing and route to the first.
/// The cluster gossips the rest, so every pair is connected and losing any one server leaves
/// the others routed. With JetStream each server has a `server_name` and a store of its own,
/// so the cluster runs clustered JetStream (R3 streams on three servers).
///
///     try await withNATSCluster(size: 3) { cluster in
///         // clients on cluster.servers[1].url ...
///         cluster.servers[1].stop()     // its clients fail over to the others
///     }
///
/// Each server stops when released (``NATSServer``). Any server can be restarted: the first
/// keeps its route port (it is in its config), the others pick new ones and dial the first
/// again, and gossip tells the rest.
public final class NATSCluster: Sendable {
    public let servers: [NATSServer]
    /// The cluster's name (`cluster { name }`).
    public let name: String
    /// The cluster's JetStream domain, when it has one (then each server takes leaf nodes).
    public let jetStreamDomain: String?

    /// Every server's client URL.
    public var urls: [String] { servers.map(\.url) }

    /// Starts `size` servers (at least 2) and waits until each one's routes to all the others
    /// are up (and, with JetStream, a meta leader is elected). With `jetStreamDomain`, the
    /// cluster's JetStream has that domain and every server listens for leaf nodes
    /// (``startLeaf(attachedTo:)``).
    public static func start(size: Int = 3, jetStream: Bool = true, extra: String = "",
                             name: String = "nex-test", jetStreamDomain: String? = nil) async throws -> NATSCluster {
        precondition(size >= 2, "a cluster has at least two servers")
        let hub = jetStreamDomain.map { "jetstream { domain: \($0) }\nleafnodes { listen: \"127.0.0.1:-1\" }" } ?? ""
        func config(_ index: Int, listen: Int, seed: Int) -> String {
            """
            server_name: \(name)-\(index)
            cluster {
              name: \(name)
              listen: "127.0.0.1:\(listen)"
              routes: ["nats://127.0.0.1:\(seed)"]
            }
            \(hub)
            \(extra)
            """
        }
        var servers: [NATSServer] = []
        var attempt = 0
        while servers.isEmpty {
            attempt += 1
            let seed = try ReservedPort().port  // released at once: see above
            do {
                servers.append(try await NATSServer.start(config: config(0, listen: seed, seed: seed), jetStream: jetStream,
                                                          monitoring: true))
            } catch where attempt < 5 && "\(error)".contains("address already in use") {
                continue
            }
        }
        guard let seed = servers[0].clusterPort else {
            throw NATSServerError("the first server of the cluster reported no route port", logTail: servers[0].logContents())
        }
        for index in 1..<size {
            servers.append(try await NATSServer.start(config: config(index, listen: -1, seed: seed), jetStream: jetStream,
                                                      monitoring: true))
        }
        let cluster = NATSCluster(servers: servers, name: name, jetStreamDomain: jetStreamDomain)
        try await cluster.waitUntilRouted(jetStream: jetStream)
        return cluster
    }

    private init(servers: [NATSServer], name: String, jetStreamDomain: String?) {
        self.servers = servers
        self.name = name
        self.jetStreamDomain = jetStreamDomain
    }

    /// Starts a leaf node server (no JetStream of its own, the same account) attached to
    /// `server` of this cluster, as an edge site would be. Its clients reach the cluster's
    /// JetStream unchanged: `default_js_domain` sends their `$JS.API` requests to the
    /// cluster's domain (plain leaf configs leave JetStream out: "JetStream Not Extended").
    /// Returns once the leaf connection is up; stopping it is the caller's (it stops when
    /// released).
    public func startLeaf(attachedTo server: NATSServer) async throws -> NATSServer {
        guard let domain = jetStreamDomain else {
            preconditionFailure("a leaf of this cluster needs a cluster started with a jetStreamDomain")
        }
        guard let port = server.monitoringPort,
              let leaf = (Self.json(port: port, path: "/varz")?["leaf"] as? [String: Any])?["port"] as? Int
        else {
            throw NATSServerError("the cluster server reports no leaf node port", logTail: server.logContents())
        }
        let config = """
            server_name: \(name)-leaf-\(UInt32.random(in: 0 ... .max))
            leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:\(leaf)" } ] }
            default_js_domain: { "$G": "\(domain)" }
            """
        let edge = try await NATSServer.start(config: config, jetStream: false, monitoring: true)
        try await waitFor(timeout: .seconds(10), "the leaf node connection to the cluster") {
            guard let port = edge.monitoringPort,
                  let connections = Self.json(port: port, path: "/leafz")?["leafnodes"] as? Int else { return false }
            return connections >= 1
        }
        return edge
    }

    /// Waits until every running server reports routes to every other running one
    /// (`/routez`), and with JetStream until `/jsz` names a meta leader on each.
    public func waitUntilRouted(jetStream: Bool = true, timeout: Duration = .seconds(20)) async throws {
        let running = servers.filter(\.isRunning)
        try await waitFor(timeout: timeout, "the cluster's routes\(jetStream ? " and JetStream meta leader" : "")") {
            for server in running {
                guard let port = server.monitoringPort,
                      let routes = Self.json(port: port, path: "/routez")?["num_routes"] as? Int,
                      routes >= running.count - 1 else { return false }
                if jetStream {
                    guard let meta = Self.json(port: port, path: "/jsz")?["meta_cluster"] as? [String: Any],
                          let leader = meta["leader"] as? String, !leader.isEmpty else { return false }
                }
            }
            return true
        }
    }

    /// A monitoring endpoint's JSON, nil when it does not answer.
    static func json(port: Int, path: String) -> [String: Any]? {
        guard let data = LoopbackHTTP.get(port: port, path: path) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }
}

/// Starts a ``NATSCluster``, runs `body` with it and stops every server when `body` returns
/// or throws.
public func withNATSCluster<Result>(
    isolation: isolated (any Actor)? = #isolation,
    size: Int = 3,
    jetStream: Bool = true,
    extra: String = "",
    jetStreamDomain: String? = nil,
    _ body: (NATSCluster) async throws -> Result
) async throws -> Result {
    let cluster = try await NATSCluster.start(size: size, jetStream: jetStream, extra: extra, jetStreamDomain: jetStreamDomain)
    return try await withTeardown(isolation: isolation, { for server in cluster.servers { server.stop() } }) {
        try await body(cluster)
    }
}
