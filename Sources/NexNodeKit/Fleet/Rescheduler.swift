import FoundationEssentials
import Logging
import NATSWire
import ServiceLifecycle

/// Keeps the reschedulable services of the nexus running, each on exactly one node.
///
/// This node says it is alive every second (``NodeLiveness``, signed beats), watches the others
/// and the state bucket, and every half second reconciles what the bucket says with what runs
/// here:
/// - another node's reschedulable record of this nexus whose node was not seen for
///   `reschedule_after_seconds`, or is leaving, is adopted (a confirmed compare-and-set decides
///   between nodes racing for it: ``WorkloadStateStore/adopt(_:)``) and started here;
/// - a workload running here that another node now holds (it adopted this node's record, or
///   records the workload as its own) is stopped here: this node was cut off, or is leaving;
/// - a record this node holds but does not run (its adoption was interrupted, or another node
///   gave it back) is started again.
///
/// Only records sealed with the nexus key count (``WorkloadStateStore/isSealedForNexus(_:)``).
/// A node judges others only after it has seen its own beats, without a gap, for
/// `reschedule_after_seconds`: one cut off from NATS sees everyone silent, itself included.
actor Rescheduler: Service {
    struct Settings: Sendable {
        var nodeID: String
        var nexus: String
        var rescheduleAfter: Duration
        var beatInterval: Duration = .seconds(1)
        /// A failed start of a record is not tried again by this node before this.
        var retryAfter: Duration = .seconds(30)
    }

    private let settings: Settings
    private let identity: NodeIdentity
    private let store: WorkloadStateStore
    private let liveness: NodeLiveness
    private let manager: WorkloadManager
    /// In lame duck mode: the node takes nothing over and starts nothing.
    private let isLameDuck: @Sendable () -> Bool
    /// Leaving (lame duck with a delay): its reschedulable services should move now.
    private let isLeaving: @Sendable () -> Bool
    private let logger: Logger
    private var sightings: NodeLiveness.Sightings
    /// Since when this node has seen its own beats without a gap (nil: not now).
    private var selfSeenSince: ContinuousClock.Instant?
    /// Every readable record of the bucket, by key.
    private var records: [String: WorkloadStateStore.Stored] = [:]
    /// Workload id → when this node may try again to start it.
    private var failed: [String: ContinuousClock.Instant] = [:]

    init(settings: Settings, identity: NodeIdentity, store: WorkloadStateStore, liveness: NodeLiveness,
         manager: WorkloadManager, isLameDuck: @escaping @Sendable () -> Bool, isLeaving: @escaping @Sendable () -> Bool,
         logger: Logger) {
        self.settings = settings
        self.identity = identity
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
                try await liveness.beat(identity, nexus: settings.nexus, leaving: isLeaving())
                failing = false
            } catch {
                if !failing { logger.warning("liveness not written", metadata: ["error": "\(error)"]) }
                failing = true
            }
            guard (try? await Task.sleep(for: settings.beatInterval)) != nil else { return }
        }
    }

    private func sawBeat(_ entry: KeyValueEntry) {
        guard entry.operation == .put,
              let beat = try? JSONDecoder().decode(NodeLiveness.Beat.self, from: Data(entry.value.readableBytesView))
        else { return }
        let now = ContinuousClock.now
        if entry.key == settings.nodeID, beat.isSigned(by: settings.nodeID) {
            let previous = sightings.lastSeen(settings.nodeID)
            if selfSeenSince == nil || previous.duration(to: now) > settings.beatInterval * 3 { selfSeenSince = now }
        }
        sightings.saw(entry.key, beat: beat, at: now)
    }

    /// Whether this node's view of the others can be trusted: it has seen its own beats,
    /// without a gap, for the reschedule delay.
    private func seesClearly(at now: ContinuousClock.Instant) -> Bool {
        guard let since = selfSeenSince else { return false }
        guard sightings.lastSeen(settings.nodeID).duration(to: now) <= settings.beatInterval * 3 else {
            selfSeenSince = nil
            return false
        }
        return since.duration(to: now) >= settings.rescheduleAfter
    }

    // MARK: Records

    private func sawRecord(_ entry: KeyValueEntry) async {
        guard entry.operation == .put else {
            records[entry.key] = nil
            return
        }
        guard let stored = WorkloadStateStore.verified(entry, logger: logger) else { return }
        records[entry.key] = stored
        await handOffIfHeldElsewhere(stored.record.id)
    }

    /// The node that holds workload `id` now, other than this one: its sealed record as its own,
    /// or its sealed adoption of this node's record. Nil when none does.
    private func holderElsewhere(of id: String) -> String? {
        for stored in records.values where stored.record.id == id && store.isSealedForNexus(stored.record) {
            if stored.owner != settings.nodeID, stored.record.adoptedBy == nil { return stored.owner }
            if stored.owner == settings.nodeID, let adopter = stored.record.adoptedBy, adopter != settings.nodeID {
                return adopter
            }
        }
        return nil
    }

    /// Stops this node's copy of `id` when another node holds it.
    private func handOffIfHeldElsewhere(_ id: String) async {
        guard let holder = holderElsewhere(of: id), await manager.isLive(id) else { return }
        await manager.handOff(id, to: holder)
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

    // MARK: Reconciling

    private func scan() async {
        while !Task.isCancelled {
            guard (try? await Task.sleep(for: .milliseconds(500))) != nil else { return }
            await reconcile()
        }
    }

    /// One pass over the records, oldest key first.
    func reconcile() async {
        let now = ContinuousClock.now
        failed = failed.filter { $0.value > now }
        guard seesClearly(at: now), !isLameDuck() else { return }
        for (key, stored) in records.sorted(by: { $0.key < $1.key }) {
            let record = stored.record
            guard record.isReschedulable, record.nexus == settings.nexus, store.isSealedForNexus(record),
                  failed[record.id] == nil, await !manager.isLive(record.id)
            else { continue }
            if stored.owner == settings.nodeID {
                // Ours and not running: an adoption was given back, or a start failed.
                guard record.adoptedBy == nil, holderElsewhere(of: record.id) == nil else { continue }
                await manager.resume(stored)
                if await !manager.isLive(record.id) { failed[record.id] = now + settings.retryAfter }
            } else if record.adoptedBy == settings.nodeID {
                // Adopted by this node, which does not run it (interrupted): finish the adoption.
                await start(stored, original: stored.record, key: key, from: stored.owner,
                            reason: "finishing an interrupted adoption")
            } else {
                let owner = sightings.isGone(stored.owner, after: settings.rescheduleAfter, at: now)
                guard owner.gone else { continue }
                if let adopter = record.adoptedBy,
                   !sightings.isGone(adopter, after: settings.rescheduleAfter, at: now).gone { continue }
                await adopt(stored, key: key, reason: owner.reason)
            }
        }
    }

    private func adopt(_ stored: WorkloadStateStore.Stored, key: String, reason: String) async {
        let adopted: WorkloadStateStore.Stored?
        do {
            adopted = try await store.adopt(stored)
        } catch {
            logger.warning("cannot mark a workload for adoption", metadata: ["key": "\(key)", "error": "\(error)"])
            failed[stored.record.id] = .now + settings.retryAfter
            return
        }
        // Another node was first.
        guard let adopted else { return }
        await start(adopted, original: stored.record, key: key, from: stored.owner, reason: reason)
    }

    /// Starts an adopted record here and removes it from its old owner's key; on failure, the
    /// record goes back as it was, for another node.
    private func start(_ adopted: WorkloadStateStore.Stored, original: WorkloadStateStore.Record, key: String,
                       from owner: String, reason: String) async {
        var request = original
        request.adoptedBy = nil
        do {
            try await manager.adopt(request, from: owner, reason: reason)
        } catch {
            logger.error("workload of another node not started here; leaving it to the nexus",
                         metadata: ["id": "\(original.id)", "from": "\(owner)", "error": "\(error)"])
            failed[original.id] = .now + settings.retryAfter
            // Our own mark (an interrupted adoption) stays ours: we try again later, and the
            // nexus takes it over if we are lost. Another's record goes back as it was signed.
            guard original.adoptedBy != settings.nodeID else { return }
            do {
                try await store.abandonAdoption(adopted, original: original)
            } catch {
                logger.warning("adoption not given back; another node takes it once this one is gone",
                               metadata: ["key": "\(key)", "error": "\(error)"])
            }
            return
        }
        do {
            try await store.finishAdoption(adopted)
        } catch {
            logger.warning("old record of a rescheduled workload not removed", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }
}
