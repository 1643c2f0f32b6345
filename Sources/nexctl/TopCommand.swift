import ArgumentParser
import Foundation
import NATSWire
import NexControl
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `nexctl top`: the fleet on one screen, refreshed: nodes, their workloads with CPU, memory
/// and invocations per second, and recent events. Keys: `q` quits; `c`, `m`, `r`, `n`, `o` sort
/// by CPU, memory, rate, name, node. `--once` prints one frame (no terminal needed).
struct Top: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A live view of the fleet: nodes, workloads, CPU, memory, invocations per second, events.",
        discussion: "Keys: q quit; sort by c CPU, m memory, r invocations/s, n name, o node. --once prints one frame and exits.")

    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print one frame and exit (for scripts).") var once = false
    @Option(help: "Seconds between frames.") var interval: Double = 2
    @Option(help: "Sort workloads by cpu, memory, rate, name or node.") var sort: TopSort = .cpu

    func run() async throws {
        try await Nexctl.perform {
            guard interval >= 0.2 else { throw ValidationError("--interval must be at least 0.2 seconds") }
            let nex = try await global.connect()
            let activity = TopActivity()
            let namespaces = global.namespace == NexSubject.systemNamespace ? [NexSubject.systemNamespace] : [global.namespace, NexSubject.systemNamespace]
            let watchers = try await namespaces.asyncMap { namespace in
                let events = try await nex.events(namespace: namespace)
                return Task { for await event in events { activity.record(event) } }
            }
            defer { watchers.forEach { $0.cancel() } }
            try await nex.connection.flush()

            let keys = once ? nil : TopKeyboard.start()
            defer { keys?.stop() }
            var sort = self.sort
            var previous: TopSample?
            let namespace = global.namespace
            while true {
                let window = Duration.milliseconds(Int64(min(interval, 1) * 1000))
                async let nodes = nex.pingAll(window: window)
                async let workloads = nex.runningWorkloads(namespace: namespace, window: window)
                let sample = TopSample(at: .now, nodes: try await nodes, workloads: try await workloads,
                                       invocations: activity.invocations)
                let frame = TopFrame(sample: sample, previous: previous, recent: activity.recent, sort: sort,
                                     namespace: namespace, width: keys?.width ?? 120)
                previous = sample
                if once {
                    print(frame.text, terminator: "")
                    return
                }
                FileHandle.standardOutput.write(Data(("\u{1B}[H\u{1B}[2J" + frame.text).utf8))
                let deadline = ContinuousClock.now + .milliseconds(Int64(interval * 1000))
                while ContinuousClock.now < deadline {
                    if let key = keys?.next() {
                        if key == "q" || key == "\u{3}" { return }
                        if let chosen = TopSort(key: key) { sort = chosen; break }
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async throws -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}

enum TopSort: String, ExpressibleByArgument, CaseIterable {
    case cpu, memory, rate, name, node

    init?(key: Character) {
        switch key {
        case "c": self = .cpu
        case "m": self = .memory
        case "r": self = .rate
        case "n": self = .name
        case "o": self = .node
        default: return nil
        }
    }
}

/// What the events said since nexctl top started: invocations per workload id, recent events.
final class TopActivity: Sendable {
    private struct State {
        var invocations: [String: Int] = [:]
        var recent: [String] = []
    }
    private let state = Mutex(State())

    func record(_ event: NexEvent<JSONValue>) {
        let name: String
        if case .object(let fields) = event.data, case .string(let workload)? = fields["workload_name"] { name = workload } else { name = "" }
        let time = event.time.split(separator: "T").last.map { String($0.prefix(8)) } ?? event.time
        state.withLock { state in
            if event.type == .functionExecSucceeded || event.type == .functionExecFailed {
                // The source of a function event is <node>-<workload id>.
                if let id = event.source.split(separator: "-").last { state.invocations[String(id), default: 0] += 1 }
            }
            if event.type != .heartbeat {
                state.recent.append("\(time)  \(event.type.rawValue)  \(name.isEmpty ? event.source.prefix(12) + "…" : Substring(name))")
                if state.recent.count > 200 { state.recent.removeFirst(100) }
            }
        }
    }

    var invocations: [String: Int] { state.withLock { $0.invocations } }
    var recent: [String] { state.withLock { Array($0.recent.suffix(6)) } }
}

/// One refresh's data.
struct TopSample {
    var at: ContinuousClock.Instant
    var nodes: [PingResponse]
    var workloads: [RunningWorkload]
    var invocations: [String: Int]
}

/// One screen of `nexctl top`, as text.
struct TopFrame {
    let text: String

    init(sample: TopSample, previous: TopSample?, recent: [String], sort: TopSort, namespace: String, width: Int) {
        let elapsed = previous.map { ($0.at.duration(to: sample.at)).seconds } ?? 0
        func cpuPercent(_ workload: RunningWorkload) -> Double? {
            guard elapsed > 0, let now = workload.cpuSeconds,
                  let before = previous?.workloads.first(where: { $0.id == workload.id })?.cpuSeconds else { return nil }
            return max(0, now - before) / elapsed * 100
        }
        func rate(_ workload: RunningWorkload) -> Double? {
            guard elapsed > 0, let previous else { return nil }
            return Double((sample.invocations[workload.id] ?? 0) - (previous.invocations[workload.id] ?? 0)) / elapsed
        }
        let workloads = sample.workloads.sorted { a, b in
            switch sort {
            case .cpu: return (cpuPercent(a) ?? a.cpuSeconds ?? 0, a.name) > (cpuPercent(b) ?? b.cpuSeconds ?? 0, b.name)
            case .memory: return (a.memoryBytes ?? 0, a.name) > (b.memoryBytes ?? 0, b.name)
            case .rate: return (rate(a) ?? 0, a.name) > (rate(b) ?? 0, b.name)
            case .name: return (a.name, a.id) < (b.name, b.id)
            case .node: return (a.nodeID, a.name) < (b.nodeID, b.name)
            }
        }
        var lines: [String] = []
        let clock = Date().formatted(.iso8601).split(separator: "T").last.map { String($0.prefix(8)) } ?? ""
        lines.append("nexctl top  \(clock)  namespace \(namespace)  \(sample.nodes.count) node\(sample.nodes.count == 1 ? "" : "s"), "
            + "\(sample.workloads.count) workload\(sample.workloads.count == 1 ? "" : "s")  sort: \(sort.rawValue)"
            + "  (q quit; c m r n o sort)")
        lines.append("")
        var nodeRows = [["NODE", "NAME", "VERSION", "UPTIME", "WORKLOADS", "LAME DUCK"]]
        for node in sample.nodes.sorted(by: { $0.nodeID < $1.nodeID }) {
            nodeRows.append([String(node.nodeID.prefix(12)), node.tags?["node_name"] ?? "-", node.version, node.uptime,
                             String(node.runningMachines), node.tags?["nex.lameduck"] == "true" ? "yes" : "no"])
        }
        lines += Self.table(nodeRows)
        lines.append("")
        var rows = [["WORKLOAD", "NAME", "NODE", "TYPE", "STATE", "UPTIME", "CPU", "MEMORY", "CALLS/S"]]
        for workload in workloads {
            let cpu = cpuPercent(workload).map { String(format: "%.1f%%", $0) }
                ?? workload.cpuSeconds.map { String(format: "%.2fs", $0) } ?? "-"
            rows.append([workload.id, workload.name, String(workload.nodeID.prefix(12)), workload.type, workload.state ?? "-",
                         workload.uptime ?? "-", cpu, workload.memoryBytes.map(Self.bytes) ?? "-",
                         workload.type == "native" ? "-" : rate(workload).map { String(format: "%.1f", $0) } ?? "-"])
        }
        lines += Self.table(rows)
        lines.append("")
        lines.append("RECENT EVENTS")
        lines += recent.isEmpty ? ["  (none yet)"] : recent.map { "  " + $0 }
        text = lines.map { String($0.prefix(max(width, 40))) }.joined(separator: "\n") + "\n"
    }

    static func table(_ rows: [[String]]) -> [String] {
        guard let first = rows.first else { return [] }
        let widths = first.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            let padded = row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
            return String(padded.joined(separator: "  ").reversed().drop { $0 == " " }.reversed())
        }
    }

    static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB"]
        var value = Double(count), unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The terminal in character mode (no echo, no line buffering; Ctrl-C still interrupts),
/// its keys read on a thread of their own; restored by ``stop()`` and on SIGINT/SIGTERM.
final class TopKeyboard: Sendable {
    private let keys = Mutex<[Character]>([])
    let width: Int

    private init(width: Int) { self.width = width }

    /// Nil when standard input is not a terminal.
    static func start() -> TopKeyboard? {
        guard isatty(STDIN_FILENO) == 1 else { return nil }
        var size = winsize()
        let width = ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 120
        var original = termios()
        tcgetattr(STDIN_FILENO, &original)
        savedTerminal = original
        var raw = original
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &raw)
        for signal in [SIGINT, SIGTERM] {
            Glibc.signal(signal) { number in
                TopKeyboard.restoreTerminal()
                Glibc.signal(number, SIG_DFL)
                raise(number)
            }
        }
        FileHandle.standardOutput.write(Data("\u{1B}[?25l".utf8))  // hide the cursor
        let keyboard = TopKeyboard(width: width)
        let thread = Thread {
            var byte: UInt8 = 0
            while read(STDIN_FILENO, &byte, 1) == 1 {
                keyboard.keys.withLock { $0.append(Character(Unicode.Scalar(byte))) }
            }
        }
        thread.start()
        return keyboard
    }

    func next() -> Character? { keys.withLock { $0.isEmpty ? nil : $0.removeFirst() } }

    func stop() {
        Self.restoreTerminal()
        FileHandle.standardOutput.write(Data("\u{1B}[?25h\n".utf8))
    }

    nonisolated(unsafe) private static var savedTerminal: termios?

    private static func restoreTerminal() {
        if var saved = savedTerminal { tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
    }
}
