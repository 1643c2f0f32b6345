import Foundation
import Logging
import NATSTestSupport
import NATSWire
import NexControl
import Testing
@testable import NexNodeKit

/// The state bucket's records on a real nats-server: who may write what, and that of two nodes
/// racing for one record exactly one gets it.
@Suite struct WorkloadStateStoreTests {
    static let logger = Logger(label: "test")

    /// The nexus every store of these tests belongs to.
    static let nexusSeed = try! XKeyPair.generate()

    static func identity() throws -> NodeIdentity {
        NodeIdentity(signingKey: try NKeyPair.generate(.server), curveKey: try XKeyPair.generate())
    }

    static func request(reschedulable: Bool = true) -> DeployRequest {
        var request = DeployRequest(type: "native", location: "file:///srv/app", workloadJWT: "jwt", environment: "sealed",
                                    senderPublicKey: "X", targetNode: "N", essential: true)
        request.reschedulable = reschedulable
        return request
    }

    /// Three stores of three nodes of one nexus on one bucket.
    func withStores(_ body: ([WorkloadStateStore]) async throws -> Void) async throws {
        try await withNATSServer(jetStream: true) { server in
            try await withConnectedClient(to: server) { client in
                var stores: [WorkloadStateStore] = []
                for _ in 0..<3 {
                    stores.append(try await WorkloadStateStore.open(
                        bucket: "state_test", replicas: 1, control: client, identity: try Self.identity(), nexus: "east",
                        nexusKey: try WorkloadStateStore.nexusSigningKey(Self.nexusSeed)))
                }
                try await body(stores)
            }
        }
    }

    /// Three stores of three nodes of one nexus, each connected to its own server of a
    /// three-server cluster, on one R3 bucket.
    func withClusterStores(_ body: ([WorkloadStateStore]) async throws -> Void) async throws {
        try await withNATSCluster(size: 3) { cluster in
            try await withConnectedClient(to: cluster.servers[0]) { first in
                try await withConnectedClient(to: cluster.servers[1]) { second in
                    try await withConnectedClient(to: cluster.servers[2]) { third in
                        var stores: [WorkloadStateStore] = []
                        for client in [first, second, third] {
                            stores.append(try await WorkloadStateStore.open(
                                bucket: "state_race", replicas: 3, control: client, identity: try Self.identity(), nexus: "east",
                                nexusKey: try WorkloadStateStore.nexusSigningKey(Self.nexusSeed)))
                        }
                        try await body(stores)
                    }
                }
            }
        }
    }

    func stored(_ store: WorkloadStateStore, owner: String, id: String) async throws -> WorkloadStateStore.Stored? {
        WorkloadStateStore.verified(try await store.bucket.get(WorkloadStateStore.key(owner: owner, id: id)), logger: Self.logger)
    }

    /// On a three-server cluster (an R3 bucket), two nodes on two servers see the same lost
    /// node and race for each of its records, fifty times: each time exactly one adopts it,
    /// and the record then says which.
    @Test func ofTwoNodesRacingToAdoptARecordExactlyOneWins() async throws {
        try await withClusterStores { stores in
            let (owner, first, second) = (stores[0], stores[1], stores[2])
            // The fifty races run at once (each adoption waits out its settle time).
            let rounds = try await withThrowingTaskGroup(of: (round: Int, winners: [String], recorded: String?).self) { group in
                for round in 0..<50 {
                    group.addTask {
                        let id = "w\(round)"
                        try await owner.record(id: id, namespace: "default", request: Self.request(), acceptedAt: Date())
                        let seenByFirst = try #require(try await stored(first, owner: owner.identity.nodeID, id: id))
                        let seenBySecond = try #require(try await stored(second, owner: owner.identity.nodeID, id: id))
                        async let a = first.adopt(seenByFirst)
                        async let b = second.adopt(seenBySecond)
                        let winners = [try await a.map { _ in first.identity.nodeID },
                                       try await b.map { _ in second.identity.nodeID }].compactMap { $0 }
                        let now = try await owner.bucket.getFromLeader(WorkloadStateStore.key(owner: owner.identity.nodeID, id: id))
                        let record = try JSONDecoder().decode(WorkloadStateStore.Record.self, from: Data(now.value.readableBytesView))
                        return (round, winners, record.adoptedBy)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(rounds.count == 50)
            for round in rounds {
                #expect(round.winners.count == 1, "round \(round.round): \(round.winners)")
                #expect(round.winners.first == round.recorded, "round \(round.round): the record names the winner")
            }
        }
    }

    /// A record adopted while its node was away is not taken back by that node when it
    /// restarts: its claim loses, and its listing leaves the record out.
    @Test func aNodeDoesNotTakeBackWhatAnotherAdopted() async throws {
        try await withStores { stores in
            let (owner, adopter) = (stores[0], stores[1])
            try await owner.record(id: "w1", namespace: "default", request: Self.request(), acceptedAt: Date())
            let mine = try #require(try await owner.records(logger: Self.logger).first)
            let seen = try #require(try await stored(adopter, owner: owner.identity.nodeID, id: "w1"))
            let adopted = try #require(try await adopter.adopt(seen))
            #expect(try await owner.claim(mine) == false)
            #expect(try await owner.records(logger: Self.logger).isEmpty)
            // The adoption done, the old key is gone.
            try await adopter.finishAdoption(adopted)
            await #expect(throws: KeyValueError.self) { try await owner.bucket.get(WorkloadStateStore.key(owner: owner.identity.nodeID, id: "w1")) }
        }
    }

    /// Whoever may write the bucket cannot forge a record: one signed by another key under a
    /// node's name, one whose `adopted_by` names a node that did not sign it, and one moved to
    /// another workload id are all ignored.
    @Test func forgedRecordsAreIgnored() async throws {
        try await withStores { stores in
            let (owner, other) = (stores[0], stores[1])
            let node = owner.identity.nodeID
            let attacker = try NKeyPair.generate(.server)
            let honest = try WorkloadStateStore.Record(id: "w1", namespace: "default", request: Self.request(),
                                                       acceptedAt: 1, nexus: "east").signed(by: owner.identity.signingKey)
            var forgedSignature = try honest.signed(by: attacker)
            forgedSignature.id = "w2"
            forgedSignature = try forgedSignature.signed(by: attacker)
            var fakeAdoption = honest
            fakeAdoption.id = "w3"
            fakeAdoption.adoptedBy = other.identity.nodeID
            fakeAdoption = try fakeAdoption.signed(by: attacker)
            var moved = honest
            moved.signature = honest.signature
            for (key, record) in [("\(node).w2", forgedSignature), ("\(node).w3", fakeAdoption), ("\(node).w4", moved)] {
                _ = try await owner.bucket.put(key, Array(try JSONEncoder().encode(record)))
            }
            _ = try await owner.bucket.put("\(node).w5", "not json")
            #expect(try await owner.records(logger: Self.logger).isEmpty)
            for id in ["w2", "w3", "w4", "w5"] { #expect(try await stored(other, owner: node, id: id) == nil, "\(id)") }
            // The honest one, written by its node, is read by every node.
            _ = try await owner.bucket.put("\(node).w1", Array(try JSONEncoder().encode(honest)))
            #expect(try await stored(other, owner: node, id: "w1")?.record == honest)
        }
    }

    /// An adoption mark moves a workload only when sealed with the nexus key: one a bucket
    /// writer made with a key of its own (signature and all), or sealed for another nexus, is
    /// not, while a nexus member's adoption and reschedulable record are.
    @Test func onlyTheNexusSealsAdoptions() async throws {
        try await withStores { stores in
            let (owner, member) = (stores[0], stores[1])
            try await owner.record(id: "w1", namespace: "default", request: Self.request(), acceptedAt: Date())
            let original = try #require(try await stored(member, owner: owner.identity.nodeID, id: "w1"))
            #expect(member.isSealedForNexus(original.record))

            let attacker = try NKeyPair.generate(.server)
            var forged = original.record
            forged.adoptedBy = attacker.publicKey
            forged = try forged.signed(by: attacker)
            #expect(!owner.isSealedForNexus(forged))
            let otherNexus = try WorkloadStateStore.nexusSigningKey(try XKeyPair.generate())
            #expect(!owner.isSealedForNexus(try forged.signed(by: attacker, nexus: otherNexus)))

            let adopted = try #require(try await member.adopt(original))
            #expect(owner.isSealedForNexus(adopted.record) && adopted.record.adoptedBy == member.identity.nodeID)
            // A plain (not reschedulable) record carries no seal: nothing in the nexus acts on it.
            try await owner.record(id: "w2", namespace: "default", request: Self.request(reschedulable: false), acceptedAt: Date())
            #expect(!member.isSealedForNexus(try #require(try await stored(member, owner: owner.identity.nodeID, id: "w2")).record))
        }
    }

    /// Liveness on this node's clock: a node is lost when no later beat it signed arrived for
    /// the delay, counted from this node's start for a node never seen; a leaving node at once.
    /// Beats nobody signed, signed by another key, or written again are no sign of life.
    @Test func sightings() throws {
        let node = try NKeyPair.generate(.server), stranger = try NKeyPair.generate(.server)
        let a = node.publicKey
        func beat(_ sentAt: Int64, leaving: Bool = false, by key: NKeyPair? = nil) throws -> NodeLiveness.Beat {
            try NodeLiveness.Beat(nexus: "east", leaving: leaving, sentAt: sentAt).signed(by: key ?? node)
        }
        let start = ContinuousClock.now
        var sightings = NodeLiveness.Sightings(since: start)
        #expect(!sightings.isGone(a, after: .seconds(3), at: start + .seconds(2)).gone)
        #expect(sightings.isGone(a, after: .seconds(3), at: start + .seconds(3)).gone)
        sightings.saw(a, beat: try beat(5), at: start + .seconds(2))
        #expect(!sightings.isGone(a, after: .seconds(3), at: start + .seconds(4)).gone)
        // The same beat again (written back, or a watcher restarting) is not a sign of life.
        sightings.saw(a, beat: try beat(5), at: start + .seconds(4))
        #expect(sightings.isGone(a, after: .seconds(3), at: start + .seconds(5)).gone)
        // Nor a later one signed by another key, or unsigned.
        sightings.saw(a, beat: try beat(9, by: stranger), at: start + .seconds(5))
        sightings.saw(a, beat: NodeLiveness.Beat(nexus: "east", leaving: false, sentAt: 10), at: start + .seconds(5))
        #expect(sightings.isGone(a, after: .seconds(3), at: start + .seconds(5)).gone)
        sightings.saw(a, beat: try beat(6, leaving: true), at: start + .seconds(5))
        let leaving = sightings.isGone(a, after: .seconds(3), at: start + .seconds(5))
        #expect(leaving.gone && leaving.reason.contains("leaving"))
    }
}
