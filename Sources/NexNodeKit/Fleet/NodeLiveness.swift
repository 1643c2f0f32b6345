import FoundationEssentials
import NATSWire

/// Which nodes of the nexus are alive, as seen from this one: each node writes its key in a
/// key-value bucket every second (`<state_bucket>_alive`, key = node id); a node whose key has
/// not changed for `rescheduleAfter` (on this node's clock, so clocks need not agree) is lost.
///
/// The value says whether the node is leaving (lame duck): its reschedulable workloads may
/// then be taken over at once.
struct NodeLiveness: Sendable {
    /// What a node writes every second.
    struct Beat: Codable, Sendable, Equatable {
        var nexus: String?
        /// The node is in lame duck mode: its reschedulable workloads should move now.
        var leaving: Bool

        enum CodingKeys: String, CodingKey { case nexus, leaving }
    }

    /// What this node has seen of the others: each node's last revision and when it changed.
    struct Sightings: Sendable {
        private var seen: [String: (revision: UInt64, at: ContinuousClock.Instant, leaving: Bool)] = [:]
        /// Nodes never seen count as seen at this instant (this node's start): a node that died
        /// before is lost `rescheduleAfter` later.
        let since: ContinuousClock.Instant

        init(since: ContinuousClock.Instant) { self.since = since }

        /// A new value of `node`'s key.
        mutating func saw(_ node: String, revision: UInt64, beat: Beat?, at now: ContinuousClock.Instant) {
            if let known = seen[node], known.revision >= revision { return }
            seen[node] = (revision, now, beat?.leaving ?? false)
        }

        /// When `node` was last seen to change.
        func lastSeen(_ node: String) -> ContinuousClock.Instant { seen[node]?.at ?? since }

        /// Whether `node` is lost (unseen for `after`), or leaving.
        func isGone(_ node: String, after: Duration, at now: ContinuousClock.Instant) -> (gone: Bool, reason: String) {
            if seen[node]?.leaving == true { return (true, "node \(node) is leaving (lame duck)") }
            let unseen = lastSeen(node).duration(to: now)
            return unseen >= after ? (true, "node \(node) was not seen for \(unseen.seconds) s") : (false, "")
        }
    }

    let bucket: KeyValue

    static func bucketName(stateBucket: String) -> String { "\(stateBucket)_alive" }

    /// Binds to the bucket, creating it when missing (keys of lost nodes expire after a minute).
    static func open(stateBucket: String, replicas: Int, control: NATSClient) async throws -> NodeLiveness {
        let js = try control.jetStream()
        let name = bucketName(stateBucket: stateBucket)
        do {
            return NodeLiveness(bucket: try await js.keyValue(name))
        } catch KeyValueError.bucketNotFound {
            return NodeLiveness(bucket: try await js.createKeyValue(
                KeyValueConfig(bucket: name, history: 1, ttl: .seconds(60), replicas: replicas)))
        }
    }

    func beat(node: String, _ beat: Beat) async throws {
        _ = try await bucket.put(node, Array(try JSONEncoder().encode(beat)))
    }
}

extension Duration {
    /// Whole seconds.
    var seconds: Int64 { components.seconds }
}
