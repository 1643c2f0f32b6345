#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import NexControl
import NexWorkloads

/// The cgroup of one sandbox (its agent and its workload), made by the node, where the kernel
/// enforces the workload's memory (swap closed), processes and CPU.
///
/// The node puts the agent in it between clone and the agent's uid change (so an unprivileged
/// node may: the process is still its own), before the agent has a workload. The limits come
/// at deploy (``apply(_:)``), each raised by what the agent already uses there, so that the
/// workload gets what it asked for and the agent's own footprint is not taken from it.
struct SandboxCgroup: Sendable {
    /// Where the node makes its sandboxes' cgroups: under its own cgroup, in each hierarchy.
    struct Hierarchies: Sendable, Equatable {
        enum Version: Sendable, Equatable { case v1, v2 }
        let version: Version
        /// The node's own cgroup directory per controller (`memory`, `pids`, `cpu`); for v2 all
        /// three are the same directory.
        let bases: [String: String]

        static let controllers = ["memory", "pids", "cpu"]

        /// The hierarchies of this process where it may make cgroups, or why there are none
        /// (`problem` names each controller missing and why).
        static func find(root: String = "/sys/fs/cgroup", own: [String: String] = WorkloadCgroup.ownCgroups())
            -> (hierarchies: Hierarchies?, problem: String?)
        {
            if FileManager.default.fileExists(atPath: root + "/cgroup.controllers"), let path = own[""] {
                let base = root + (path == "/" ? "" : path)
                guard access(base, W_OK) == 0 else {
                    return (nil, "\(base) is not writable (delegate it: Delegate=yes in the unit)")
                }
                let available = Set(read(base + "/cgroup.controllers")?.split(whereSeparator: \.isWhitespace).map(String.init) ?? [])
                let missing = controllers.filter { !available.contains($0) }
                guard missing.isEmpty else {
                    return (nil, "controllers \(missing.joined(separator: ", ")) are not delegated to \(base)")
                }
                return (Hierarchies(version: .v2, bases: Dictionary(uniqueKeysWithValues: controllers.map { ($0, base) })), nil)
            }
            var bases: [String: String] = [:], problems: [String] = []
            for controller in controllers {
                guard let path = own[controller] else {
                    problems.append("no \(controller) hierarchy")
                    continue
                }
                let base = "\(root)/\(controller)\(path == "/" ? "" : path)"
                guard access(base, W_OK) == 0 else {
                    problems.append("\(base) is not writable")
                    continue
                }
                bases[controller] = base
            }
            guard problems.isEmpty else { return (nil, problems.joined(separator: "; ")) }
            return (Hierarchies(version: .v1, bases: bases), nil)
        }
    }

    let hierarchies: Hierarchies
    /// controller → this sandbox's directory.
    let directories: [String: String]

    /// The `cgroup.procs` files the agent is put in at spawn.
    var procsFiles: [String] { Array(Set(directories.values)).sorted().map { $0 + "/cgroup.procs" } }

    /// Makes `nex-<name>` in each hierarchy (v2: enabling the controllers for children of the
    /// node's cgroup first).
    static func create(name: String, in hierarchies: Hierarchies) throws(SandboxCgroupError) -> SandboxCgroup {
        if hierarchies.version == .v2, let base = hierarchies.bases["memory"] {
            try enableControllers(in: base)
        }
        var directories: [String: String] = [:]
        for (controller, base) in hierarchies.bases {
            let directory = base + "/nex-" + name
            if directories.values.contains(directory) {
                directories[controller] = directory
                continue
            }
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                let error = SandboxCgroupError(path: directory, operation: "create", code: errno)
                SandboxCgroup(hierarchies: hierarchies, directories: directories).remove()
                throw error
            }
            directories[controller] = directory
        }
        return SandboxCgroup(hierarchies: hierarchies, directories: directories)
    }

    /// cgroup v2 puts controllers in a child only when its parent lists them in
    /// `cgroup.subtree_control`; a cgroup that holds processes itself may not (the "no internal
    /// processes" rule), so the node's own processes move to a leaf `<base>/node` first.
    private static func enableControllers(in base: String) throws(SandboxCgroupError) {
        let wanted = Hierarchies.controllers
        let enabled = Set(read(base + "/cgroup.subtree_control")?.split(whereSeparator: \.isWhitespace).map(String.init) ?? [])
        guard !wanted.allSatisfy(enabled.contains) else { return }
        let line = wanted.map { "+" + $0 }.joined(separator: " ")
        if WorkloadCgroup.write(line, to: base + "/cgroup.subtree_control") { return }
        guard errno == EBUSY else {
            throw SandboxCgroupError(path: base + "/cgroup.subtree_control", operation: "enable \(line) in", code: errno)
        }
        let leaf = base + "/node"
        guard mkdir(leaf, 0o755) == 0 || errno == EEXIST else {
            throw SandboxCgroupError(path: leaf, operation: "create", code: errno)
        }
        for pid in WorkloadCgroup.pids(in: base + "/cgroup.procs") where !WorkloadCgroup.write(String(pid), to: leaf + "/cgroup.procs") {
            if errno != ESRCH { throw SandboxCgroupError(path: leaf + "/cgroup.procs", operation: "move the node into", code: errno) }
        }
        guard WorkloadCgroup.write(line, to: base + "/cgroup.subtree_control") else {
            throw SandboxCgroupError(path: base + "/cgroup.subtree_control", operation: "enable \(line) in", code: errno)
        }
    }

    /// Sets the workload's limits; returns what was applied (`cgroup_memory`, `cgroup_swap`,
    /// `cgroup_pids`, `cgroup_cpu`). Memory and processes are raised by what the sandbox uses
    /// now (its agent). A limit that cannot be set is an error, never silently skipped.
    func apply(_ limits: ResourceLimits) throws(SandboxCgroupError) -> [String] {
        var applied: [String] = []
        if let memory = limits.memoryBytes, memory > 0, let directory = directories["memory"] {
            let v2 = hierarchies.version == .v2
            let usage = Self.read(directory + (v2 ? "/memory.current" : "/memory.usage_in_bytes")).flatMap { Int($0) } ?? 0
            let limit = String(memory + usage)
            if v2 {
                try set(limit, directory + "/memory.max")
                applied.append("cgroup_memory")
                if FileManager.default.fileExists(atPath: directory + "/memory.swap.max") {
                    try set("0", directory + "/memory.swap.max")
                    applied.append("cgroup_swap")
                }
            } else {
                try set(limit, directory + "/memory.limit_in_bytes")
                applied.append("cgroup_memory")
                // memory.limit_in_bytes bounds RAM only: memory+swap at the same value closes swap.
                if FileManager.default.fileExists(atPath: directory + "/memory.memsw.limit_in_bytes") {
                    try set(limit, directory + "/memory.memsw.limit_in_bytes")
                    applied.append("cgroup_swap")
                }
            }
        }
        if let processes = limits.processes, processes > 0, let directory = directories["pids"] {
            let current = Self.read(directory + "/pids.current").flatMap { Int($0) } ?? 0
            try set(String(processes + current), directory + "/pids.max")
            applied.append("cgroup_pids")
        }
        if let millicores = limits.cpuMillicores, millicores > 0, let directory = directories["cpu"] {
            let period = 100_000, quota = max(1_000, millicores * period / 1000)
            if hierarchies.version == .v2 {
                try set("\(quota) \(period)", directory + "/cpu.max")
            } else {
                try set(String(period), directory + "/cpu.cfs_period_us")
                try set(String(quota), directory + "/cpu.cfs_quota_us")
            }
            applied.append("cgroup_cpu")
        }
        return applied
    }

    /// Whether the kernel killed a process of the sandbox for memory (v1 `memory.oom_control`
    /// `oom_kill`, v2 `memory.events` `oom_kill`).
    var outOfMemoryKills: Int {
        guard let directory = directories["memory"] else { return 0 }
        let file = directory + (hierarchies.version == .v2 ? "/memory.events" : "/memory.oom_control")
        for line in Self.read(file)?.split(separator: "\n") ?? [] where line.hasPrefix("oom_kill ") {
            return Int(line.dropFirst("oom_kill ".count)) ?? 0
        }
        return 0
    }

    /// Removes the directories once the sandbox is empty (its pid 1 has ended, so the kernel is
    /// ending the rest): retried for a moment while the last processes are reaped.
    func remove() {
        for directory in Set(directories.values) {
            for _ in 0..<200 {
                if rmdir(directory) == 0 || errno == ENOENT { break }
                guard errno == EBUSY else { break }
                usleep(5_000)
            }
        }
    }

    private func set(_ value: String, _ path: String) throws(SandboxCgroupError) {
        guard WorkloadCgroup.write(value, to: path) else {
            throw SandboxCgroupError(path: path, operation: "write \(value) to", code: errno)
        }
    }

    /// What the sandbox (its agent and workload) uses now: memory (`memory.current`, v1
    /// `memory.usage_in_bytes`) and CPU time since it was made (`cpu.stat` `usage_usec`, v1
    /// `cpuacct.usage`).
    func usage() -> ResourceUsage {
        var usage = ResourceUsage()
        let v2 = hierarchies.version == .v2
        if let directory = directories["memory"] {
            usage.memoryBytes = Self.read(directory + (v2 ? "/memory.current" : "/memory.usage_in_bytes")).flatMap { Int($0) }
        }
        if let directory = directories["cpu"] {
            if v2 {
                let line = Self.read(directory + "/cpu.stat")?.split(separator: "\n").first { $0.hasPrefix("usage_usec ") }
                usage.cpuSeconds = line.flatMap { Double($0.dropFirst("usage_usec ".count)) }.map { $0 / 1e6 }
            } else {
                usage.cpuSeconds = Self.read(directory + "/cpuacct.usage").flatMap { Double($0) }.map { $0 / 1e9 }
            }
        }
        if usage.cpuSeconds == nil, let directory = directories["memory"] ?? directories.values.first {
            // cgroup v1 without cpuacct beside cpu: the sandbox's processes' own times.
            let pids = (Self.read(directory + "/cgroup.procs") ?? "").split(separator: "\n").compactMap { pid_t($0) }
            usage.cpuSeconds = ProcessUsage.cpuSeconds(of: pids)
        }
        return usage
    }

    /// A cgroup file's text without surrounding blanks.
    static func read(_ path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

/// A sandbox cgroup could not be made or limited: the file, what was tried and the errno.
struct SandboxCgroupError: Error, CustomStringConvertible {
    var path: String
    var operation: String
    var code: Int32
    var description: String { "cannot \(operation) \(path): \(String(cString: strerror(code)))" }
}
