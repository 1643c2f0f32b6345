import FoundationEssentials
import NATSWire

/// Which nodes of the nexus are alive, as seen from this one: each node writes its key in a
/// key-value bucket every second (`<state_bucket>_alive`, key = node id); a node whose key has
/// not changed for `rescheduleAfter` (on this node's clock, so clocks need not agree) is lost.
///
/// The value says whether the node is leaving (lame duck with a delay): its reschedulable
/// workloads may then be taken over at once. Each beat is signed with the node's key (the
/// node id is its public key) and carries the time it was sent: a beat nobody signed, or an old
/// one written again, is not a sign of life.
struct NodeLiveness: Sendable {
    /// What a node writes every second.
    struct Beat: Codable, Sendable, Equatable {
        var nexus: String?
        /// The node is leaving: its reschedulable workloads should move now.
        var leaving: Bool
        /// When it was sent, Unix milliseconds on the node's clock: later beats only.
        var sentAt: Int64
        /// The node's Ed25519 signature of the beat without it (base64).
        var signature: String?

        enum CodingKeys: String, CodingKey { case nexus, leaving, sentAt = "sent_at", signature }

        private func signedBytes() throws -> [UInt8] {
            var unsigned = self
            unsigned.signature = nil
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return Array(try encoder.encode(unsigned))
        }

        func signed(by key: NKeyPair) throws -> Beat {
            var copy = self
            copy.signature = Data(key.sign(try signedBytes())).base64EncodedString()
            return copy
        }

        /// Whether `node` (its id, a public key) signed this beat.
        func isSigned(by node: String) -> Bool {
            guard let signature = signature.flatMap({ Data(base64Encoded: $0) }), let bytes = try? signedBytes() else {
                return false
            }
            return (try? NKeyPair.verify(publicKey: node, signature: signature, message: bytes)) == true
        }
    }

    /// What this node has seen of the others: each node's last beat and when it arrived.
    struct Sightings: Sendable {
        private var seen: [String: (sentAt: Int64, at: ContinuousClock.Instant, leaving: Bool)] = [:]
        /// Nodes never seen count as seen at this instant (this node's start): a node that died
        /// before is lost `rescheduleAfter` later.
        let since: ContinuousClock.Instant

        init(since: ContinuousClock.Instant) { self.since = since }

        /// A value of `node`'s key: a sign of life when `node` signed it and it is later than
        /// the last one seen.
        mutating func saw(_ node: String, beat: Beat, at now: ContinuousClock.Instant) {
            guard beat.isSigned(by: node) else { return }
            if let known = seen[node], known.sentAt >= beat.sentAt { return }
            seen[node] = (beat.sentAt, now, beat.leaving)
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

    /// Writes this node's beat, signed.
    func beat(_ identity: NodeIdentity, nexus: String?, leaving: Bool) async throws {
        let beat = try Beat(nexus: nexus, leaving: leaving, sentAt: Int64(Date().timeIntervalSince1970 * 1000))
            .signed(by: identity.signingKey)
        _ = try await bucket.put(identity.nodeID, Array(try JSONEncoder().encode(beat)))
    }
}

extension Duration {
    /// Whole seconds.
    var seconds: Int64 { components.seconds }
}
