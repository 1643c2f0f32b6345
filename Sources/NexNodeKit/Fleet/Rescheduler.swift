import FoundationEssentials
import Logging
import NATSWire
import ServiceLifecycle

/// Keeps the reschedulable services of the nexus running: this node says it is alive every
/// second (``NodeLiveness``), watches the others, and takes over the reschedulable workloads of
/// a node of its nexus that was not seen for `reschedule_after_seconds`, or that is leaving in
/// lame duck mode.
///
/// Every node of the nexus sees the same lost node at about the same time and races for its
/// records; a compare-and-set on each record decides (``WorkloadStateStore/adopt(_:)``), so
/// exactly one node starts each workload. A node whose own record was adopted while it still
/// runs the workload (it was cut off, or it is leaving) stops its copy.
///
/// A `Service` of the node's group; it adopts nothing unless it sees its own beats (a node cut
/// off from NATS sees everyone silent, itself included, and must not conclude they are lost).
actor Rescheduler: Service {
    struct Settings: Sendable {
        var nodeID: String
        var nexus: String
        var rescheduleAfter: Duration
        var beatInterval: Duration = .seconds(1)
        /// A failed adoption is not tried again by this node before this.
        var retryAfter: Duration = .seconds(30)
    }

    private let settings: Settings
    private let store: WorkloadStateStore
    private let liveness: NodeLiveness
    private let manager: WorkloadManager
    /// In lame duck mode: the node takes nothing over.
    private let isLameDuck: @Sendable () -> Bool
    /// Leaving (lame duck with a delay): its reschedulable services should move now.
    private let isLeaving: @Sendable () -> Bool
    private let logger: Logger
    private var sightings: NodeLiveness.Sightings
    /// Other nodes' reschedulable records of this nexus, by key, as last seen.
    private var candidates: [String: WorkloadStateStore.Stored] = [:]
    /// Workload id → when this node may try again to adopt it.
    private var failed: [String: ContinuousClock.Instant] = [:]

    init(settings: Settings, store: WorkloadStateStore, liveness: NodeLiveness, manager: WorkloadManager,
         isLameDuck: @escaping @Sendable () -> Bool, isLeaving: @escaping @Sendable () -> Bool, logger: Logger) {
        self.settings = settings
        self.store = store
        self.liveness = liveness
        self.manager = manager
        self.isLameDuck = isLameDuck
        self.isLeaving = isLeaving
        self.logger = logger
        self.sightings = NodeLiveness.Sightings(since: .now)
    }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.beat() }
            group.addTask { await self.watch(self.liveness.bucket) { await self.sawBeat($0) } }
            group.addTask { await self.watch(self.store.bucket) { await self.sawRecord($0) } }
            group.addTask { await self.scan() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }

    // MARK: Liveness

    private func beat() async {
        var failing = false
        while !Task.isCancelled {
            do {
                try await liveness.beat(node: settings.nodeID, .init(nexus: settings.nexus, leaving: isLeaving()))
                failing = false
            } catch {
                if !failing { logger.warning("liveness not written", metadata: ["error": "\(error)"]) }
                failing = true
            }
            guard (try? await Task.sleep(for: settings.beatInterval)) != nil else { return }
        }
    }

    private func sawBeat(_ entry: KeyValueEntry) {
        guard entry.operation == .put else { return }
        let beat = try? JSONDecoder().decode(NodeLiveness.Beat.self, from: Data(entry.value.readableBytesView))
        sightings.saw(entry.key, revision: entry.revision, beat: beat, at: .now)
    }

    // MARK: Records

    private func sawRecord(_ entry: KeyValueEntry) async {
        guard entry.operation == .put else {
            candidates[entry.key] = nil
            return
        }
        guard let stored = WorkloadStateStore.verified(entry, logger: logger) else { return }
        let record = stored.record
        if stored.owner == settings.nodeID {
            // Adopted by another node while it runs here: that node runs it now.
            if let adopter = record.adoptedBy, adopter != settings.nodeID {
                await manager.handOff(record.id, to: adopter)
            }
            return
        }
        guard record.isReschedulable, record.nexus == settings.nexus else { return }
        candidates[entry.key] = stored
    }

    /// Runs `body` for every change of `bucket` until cancelled, watching again after a failure.
    private func watch(_ bucket: KeyValue, _ body: (KeyValueEntry) async -> Void) async {
        while !Task.isCancelled {
            var watcher: KeyValueWatcher?
            do {
                let started = try await bucket.watch()
                watcher = started
                for try await event in started {
                    if case .entry(let entry) = event { await body(entry) }
                }
            } catch {
                if !Task.isCancelled {
                    logger.debug("watch failed; watching again", metadata: ["bucket": "\(bucket.bucket)", "error": "\(error)"])
                }
            }
            await watcher?.stop()  // its consumer goes with it
            guard (try? await Task.sleep(for: .seconds(1))) != nil else { return }
        }
    }

    // MARK: Adoption

    private func scan() async {
        while !Task.isCancelled {
            guard (try? await Task.sleep(for: .milliseconds(500))) != nil else { return }
            await adoptFromLostNodes()
        }
    }

    /// Adopts, one by one, the candidates whose node (and adopter, if any) is gone.
    func adoptFromLostNodes() async {
        let now = ContinuousClock.now
        // Only a node that sees its own beats sees the others as they are.
        guard sightings.lastSeen(settings.nodeID).duration(to: now) < settings.beatInterval * 3, !isLameDuck() else { return }
        for (key, stored) in candidates.sorted(by: { $0.key < $1.key }) {
            let record = stored.record
            let owner = sightings.isGone(stored.owner, after: settings.rescheduleAfter, at: now)
            guard owner.gone else { continue }
            if let adopter = record.adoptedBy, adopter == settings.nodeID
                || !sightings.isGone(adopter, after: settings.rescheduleAfter, at: now).gone { continue }
            if let retry = failed[record.id], retry > now { continue }
            await adopt(stored, key: key, reason: owner.reason)
        }
    }

    private func adopt(_ stored: WorkloadStateStore.Stored, key: String, reason: String) async {
        let adopted: WorkloadStateStore.Stored?
        do {
            adopted = try await store.adopt(stored)
        } catch {
            logger.warning("cannot mark a workload for adoption", metadata: ["key": "\(key)", "error": "\(error)"])
            return
        }
        candidates[key] = nil
        // Another node was first.
        guard let adopted else { return }
        var original = stored.record
        original.adoptedBy = nil
        do {
            try await manager.adopt(original, from: stored.owner, reason: reason)
        } catch {
            logger.error("workload of a lost node not started here; leaving it to another node",
                         metadata: ["id": "\(original.id)", "from": "\(stored.owner)", "error": "\(error)"])
            failed[original.id] = .now + settings.retryAfter
            try? await store.abandonAdoption(adopted, original: stored.record)
            return
        }
        do {
            try await store.finishAdoption(adopted)
        } catch {
            logger.warning("old record of a rescheduled workload not removed", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }
}
