import CoreMetrics
import Synchronization

/// The node's metrics, on swift-metrics: counters moved where things happen (deploys,
/// restarts, host calls, function invocations) and gauges set from a ``NodeMetricsSnapshot``
/// when the metrics are read (workloads by state, agents, the bus, each workload's CPU, memory
/// and log lines). Names follow Nex 0.2's where it had one (`nex_workload_count`,
/// `nex_function_trigger`, `nex_function_failed_trigger`); the list is in `docs/operations.md`.
///
/// Label values that come from requests are bounded: a host service is one of the known
/// services or `other`, so a hostile subject cannot grow the set of series.
public final class NodeMetrics: Sendable {
    private let factory: any MetricsFactory
    private let restarts: Counter
    private let lameDuck: Gauge
    private let agents: Gauge
    private let warmAgents: Gauge
    private let workloadCount: Gauge
    private let busMessages: CounterFromTotal
    private let busBytes: CounterFromTotal
    private let deploys = Mutex<[String: Counter]>([:])
    private let hostCalls = Mutex<[String: Counter]>([:])
    private let byState = Mutex<[String: Gauge]>([:])
    /// Each function's series and how many triggers use them (replicas, a redeploy overlapping
    /// its predecessor): the series go when the last one stops, so a deployer cycling through
    /// names cannot grow the node's memory and the scrape without bound.
    private let functions = Mutex<[String: (metrics: FunctionMetrics, users: Int)]>([:])
    private let workloads = Mutex<[String: WorkloadMetrics]>([:])

    /// The workload states reported (``WorkloadManager/reportedState(_:)``).
    static let states = ["starting", "running", "restarting", "stopping"]

    public init(factory: any MetricsFactory) {
        self.factory = factory
        restarts = Counter(label: "nex_workload_restarts_total", factory: factory)
        lameDuck = Gauge(label: "nex_lame_duck", factory: factory)
        agents = Gauge(label: "nex_agents", factory: factory)
        warmAgents = Gauge(label: "nex_agents_warm", factory: factory)
        workloadCount = Gauge(label: "nex_workload_count", factory: factory)
        busMessages = CounterFromTotal(Counter(label: "nex_bus_messages_total", factory: factory))
        busBytes = CounterFromTotal(Counter(label: "nex_bus_bytes_total", factory: factory))
    }

    /// A deploy ended: `started`, `refused` (the request was wrong or not allowed) or `failed`.
    func deployed(result: String) {
        counter(in: deploys, key: result) { Counter(label: "nex_deploys_total", dimensions: [("result", result)], factory: factory) }
            .increment()
    }

    /// An essential service was restarted.
    func restarted() { restarts.increment() }

    /// A host-service call was answered with `code`.
    func hostCall(service: String, code: Int) {
        let service = HostServicesConfiguration.knownServices.contains(service) ? service : "other"
        counter(in: hostCalls, key: "\(service) \(code)") {
            Counter(label: "nex_host_calls_total", dimensions: [("service", service), ("code", String(code))], factory: factory)
        }.increment()
    }

    /// The invocation metrics of one function, by namespace and name, for a trigger that calls
    /// ``FunctionMetrics/release()`` when it stops.
    func function(namespace: String, name: String) -> FunctionMetrics {
        let key = namespace + "/" + name
        return functions.withLock { functions in
            if let (existing, users) = functions[key] {
                functions[key] = (existing, users + 1)
                return existing
            }
            let made = FunctionMetrics(namespace: namespace, name: name, factory: factory) { [weak self] in
                self?.release(key: key)
            }
            functions[key] = (made, 1)
            return made
        }
    }

    private func release(key: String) {
        let unused: FunctionMetrics? = functions.withLock { functions in
            guard let (metrics, users) = functions[key] else { return nil }
            if users > 1 {
                functions[key] = (metrics, users - 1)
                return nil
            }
            functions[key] = nil
            return metrics
        }
        unused?.destroy()
    }

    /// Sets the gauges from what the node holds now; a workload no longer in `snapshot` loses
    /// its series.
    func update(_ snapshot: NodeMetricsSnapshot) {
        lameDuck.record(snapshot.lameDuck ? 1 : 0)
        agents.record(snapshot.agents)
        warmAgents.record(snapshot.warmAgents)
        busMessages.set(snapshot.busMessages)
        busBytes.set(snapshot.busBytes)
        workloadCount.record(snapshot.workloads.count)
        let counts = Dictionary(grouping: snapshot.workloads, by: \.state).mapValues(\.count)
        byState.withLock { gauges in
            for state in Self.states {
                let gauge = gauges[state] ?? Gauge(label: "nex_workloads", dimensions: [("state", state)], factory: factory)
                gauges[state] = gauge
                gauge.record(counts[state] ?? 0)
            }
        }
        workloads.withLock { series in
            let present = Set(snapshot.workloads.map(\.id))
            for (id, gone) in series where !present.contains(id) {
                gone.destroy()
                series[id] = nil
            }
            for workload in snapshot.workloads {
                let metrics = series[workload.id] ?? WorkloadMetrics(workload, factory: factory)
                series[workload.id] = metrics
                metrics.update(workload)
            }
        }
    }

    private func counter(in cache: borrowing Mutex<[String: Counter]>, key: String, make: () -> Counter) -> Counter {
        cache.withLock { counters in
            if let existing = counters[key] { return existing }
            let made = make()
            counters[key] = made
            return made
        }
    }
}

/// What the node holds when its metrics are read.
struct NodeMetricsSnapshot: Sendable {
    struct Workload: Sendable {
        var id: String
        var name: String
        var namespace: String
        var type: String
        var state: String
        var usage: ResourceUsage?
        var logLines: Int
        var logLinesDropped: Int
    }

    var lameDuck: Bool
    var agents: Int
    var warmAgents: Int
    var busMessages: Int
    var busBytes: Int
    var workloads: [Workload]
}

/// One function's invocations: `nex_function_trigger` and `nex_function_failed_trigger`
/// (Nex 0.2's names) and a latency histogram, `nex_function_duration_seconds`.
final class FunctionMetrics: Sendable {
    private let triggered: Counter
    private let failed: Counter
    private let duration: Timer
    private let onRelease: @Sendable () -> Void

    init(namespace: String, name: String, factory: any MetricsFactory, onRelease: @escaping @Sendable () -> Void) {
        let dimensions = [("namespace", namespace), ("workload_name", name)]
        triggered = Counter(label: "nex_function_trigger", dimensions: dimensions, factory: factory)
        failed = Counter(label: "nex_function_failed_trigger", dimensions: dimensions, factory: factory)
        duration = Timer(label: "nex_function_duration_seconds", dimensions: dimensions, factory: factory)
        self.onRelease = onRelease
    }

    /// A trigger that got these from ``NodeMetrics/function(namespace:name:)`` stopped (call it
    /// once per trigger); once no trigger of the function is left, its series are removed.
    func release() { onRelease() }

    fileprivate func destroy() {
        triggered.destroy()
        failed.destroy()
        duration.destroy()
    }

    func succeeded(after elapsed: Duration) {
        triggered.increment()
        let parts = elapsed.components
        duration.recordNanoseconds(parts.seconds * 1_000_000_000 + parts.attoseconds / 1_000_000_000)
    }

    func failedOnce() {
        triggered.increment()
        failed.increment()
    }
}

/// The series of one workload.
final class WorkloadMetrics: Sendable {
    private let cpu: Gauge
    private let memory: Gauge
    private let logLines: CounterFromTotal
    private let logLinesDropped: CounterFromTotal

    init(_ workload: NodeMetricsSnapshot.Workload, factory: any MetricsFactory) {
        let dimensions = [("workload_id", workload.id), ("workload_name", workload.name),
                          ("namespace", workload.namespace), ("type", workload.type)]
        cpu = Gauge(label: "nex_workload_cpu_seconds", dimensions: dimensions, factory: factory)
        memory = Gauge(label: "nex_workload_memory_bytes", dimensions: dimensions, factory: factory)
        logLines = CounterFromTotal(Counter(label: "nex_workload_log_lines_total", dimensions: dimensions, factory: factory))
        logLinesDropped = CounterFromTotal(
            Counter(label: "nex_workload_log_lines_dropped_total", dimensions: dimensions, factory: factory))
    }

    func update(_ workload: NodeMetricsSnapshot.Workload) {
        if let usage = workload.usage {
            if let seconds = usage.cpuSeconds { cpu.record(seconds) }
            if let bytes = usage.memoryBytes { memory.record(bytes) }
        }
        logLines.set(workload.logLines)
        logLinesDropped.set(workload.logLinesDropped)
    }

    func destroy() {
        cpu.destroy()
        memory.destroy()
        logLines.counter.destroy()
        logLinesDropped.counter.destroy()
    }
}

/// A counter that follows a running total kept elsewhere: each ``set(_:)`` adds what the total
/// grew by since the last one.
final class CounterFromTotal: Sendable {
    let counter: Counter
    private let last = Mutex(0)

    init(_ counter: Counter) { self.counter = counter }

    func set(_ total: Int) {
        let grown = last.withLock { last -> Int in
            defer { last = max(last, total) }
            return total - last
        }
        if grown > 0 { counter.increment(by: grown) }
    }
}

/// What a workload's sandbox (its cgroup), or without one its agent process, uses now.
struct ResourceUsage: Sendable, Equatable {
    var cpuSeconds: Double?
    var memoryBytes: Int?
}
