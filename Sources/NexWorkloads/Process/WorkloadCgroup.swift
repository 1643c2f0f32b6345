#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import NexControl

/// A cgroup for one workload, with a memory and a pids limit, where the host lets us make
/// one (cgroup v2 with the controllers delegated to our cgroup, or v1 `memory` and `pids`
/// hierarchies we may write to). The workload joins it between fork and exec.
public struct WorkloadCgroup: Sendable {
    /// Directories created (removed again by ``remove()``).
    public let directories: [String]
    /// The `cgroup.procs` files the child writes its pid to.
    public let procsFiles: [String]
    /// `cgroup_memory`, `cgroup_swap` (swap closed: v1 `memory.memsw.limit_in_bytes` equal to
    /// the memory limit, v2 `memory.swap.max` 0), `cgroup_pids`: what was limited.
    public let applied: [String]

    /// Makes `nex-<name>` under this process's own cgroup(s) with the limits given; nil when
    /// there is nothing to limit or the host does not allow it (the reason is in `unavailable`).
    public static func create(name: String, limits: ResourceLimits, root: String = "/sys/fs/cgroup",
                              unavailable: inout String?) -> WorkloadCgroup? {
        let memory = limits.memoryBytes.flatMap { $0 > 0 ? $0 : nil }
        let pids = limits.processes.flatMap { $0 > 0 ? $0 : nil }
        guard memory != nil || pids != nil else { return nil }
        let own = ownCgroups()
        if FileManager.default.fileExists(atPath: root + "/cgroup.controllers"), let path = own[""] {
            return createV2(name: name, base: root + path, memory: memory, pids: pids, unavailable: &unavailable)
        }
        var directories: [String] = [], procs: [String] = [], applied: [String] = []
        for (controller, value, file, label) in [("memory", memory, "memory.limit_in_bytes", "cgroup_memory"),
                                                 ("pids", pids, "pids.max", "cgroup_pids")] {
            guard let value else { continue }
            guard let path = own[controller] else {
                unavailable = "no \(controller) cgroup controller"
                continue
            }
            let directory = "\(root)/\(controller)\(path == "/" ? "" : path)/nex-\(name)"
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                unavailable = "cannot create \(directory): \(String(cString: strerror(errno)))"
                continue
            }
            guard write(String(value), to: directory + "/" + file) else {
                unavailable = "cannot set \(directory)/\(file): \(String(cString: strerror(errno)))"
                rmdir(directory)
                continue
            }
            // memory.limit_in_bytes bounds RAM only: without memory+swap at the same value a
            // workload would go on allocating into swap (the file exists when swap accounting is on).
            var swapClosed = false
            if controller == "memory", FileManager.default.fileExists(atPath: directory + "/memory.memsw.limit_in_bytes") {
                guard write(String(value), to: directory + "/memory.memsw.limit_in_bytes") else {
                    unavailable = "cannot set \(directory)/memory.memsw.limit_in_bytes: \(String(cString: strerror(errno)))"
                    rmdir(directory)
                    continue
                }
                swapClosed = true
            }
            directories.append(directory)
            procs.append(directory + "/cgroup.procs")
            applied.append(label)
            if swapClosed { applied.append("cgroup_swap") }
        }
        guard !procs.isEmpty else { return nil }
        return WorkloadCgroup(directories: directories, procsFiles: procs, applied: applied)
    }

    private static func createV2(name: String, base: String, memory: Int?, pids: Int?,
                                 unavailable: inout String?) -> WorkloadCgroup? {
        let directory = base + "/nex-" + name
        guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
            unavailable = "cannot create \(directory): \(String(cString: strerror(errno)))"
            return nil
        }
        var applied: [String] = []
        if let memory, write(String(memory), to: directory + "/memory.max") {
            applied.append("cgroup_memory")
            // memory.max bounds RAM only: close swap too (the file exists when swap is accounted).
            if FileManager.default.fileExists(atPath: directory + "/memory.swap.max"), write("0", to: directory + "/memory.swap.max") {
                applied.append("cgroup_swap")
            }
        }
        if let pids, write(String(pids), to: directory + "/pids.max") { applied.append("cgroup_pids") }
        guard !applied.isEmpty else {
            unavailable = "the memory and pids controllers are not delegated to \(base)"
            rmdir(directory)
            return nil
        }
        return WorkloadCgroup(directories: [directory], procsFiles: [directory + "/cgroup.procs"], applied: applied)
    }

    /// SIGKILLs every process in the cgroup, wherever it went in the process tree: cgroup v2's
    /// `cgroup.kill` where the kernel has it, else every pid in each `cgroup.procs`, round
    /// after round until they are empty. Returns whether the cgroups are empty now.
    @discardableResult
    public func kill() -> Bool {
        for directory in directories where FileManager.default.fileExists(atPath: directory + "/cgroup.kill") {
            _ = Self.write("1", to: directory + "/cgroup.kill")
        }
        for _ in 0..<1000 {
            let pids = procsFiles.flatMap(Self.pids(in:))
            if pids.isEmpty { return true }
            for pid in pids { Glibc.kill(pid, SIGKILL) }
            usleep(1_000)
        }
        return procsFiles.flatMap(Self.pids(in:)).isEmpty
    }

    /// What this process may limit with cgroups, for `nex-node preflight`: the version, and
    /// each controller with whether its cgroup here is writable.
    public static func describe(root: String = "/sys/fs/cgroup") -> String {
        let own = ownCgroups()
        if FileManager.default.fileExists(atPath: root + "/cgroup.controllers"), let path = own[""] {
            let directory = root + path
            let controllers = (try? String(contentsOfFile: directory + "/cgroup.controllers", encoding: .utf8))?
                .split(whereSeparator: \.isWhitespace).map(String.init) ?? []
            let writable = access(directory, W_OK) == 0 ? "writable" : "not writable"
            return "v2 at \(directory) (\(writable)), controllers: \(controllers.isEmpty ? "none" : controllers.joined(separator: " "))"
        }
        let parts = ["memory", "pids", "cpu"].map { controller -> String in
            guard let path = own[controller] else { return "\(controller): none" }
            let directory = "\(root)/\(controller)\(path == "/" ? "" : path)"
            return "\(controller): \(directory) (\(access(directory, W_OK) == 0 ? "writable" : "not writable"))"
        }
        return "v1, " + parts.joined(separator: ", ")
    }

    /// The pids listed in a `cgroup.procs` file.
    package static func pids(in procsFile: String) -> [pid_t] {
        guard let text = try? String(contentsOfFile: procsFile, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { pid_t($0) }
    }

    /// Removes the cgroup directories (once the workload has exited and they are empty).
    public func remove() {
        for directory in directories { rmdir(directory) }
    }

    /// controller (`memory`, `pids`; `""` for v2) → this process's cgroup path, from /proc/self/cgroup.
    package static func ownCgroups() -> [String: String] {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return [:] }
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            for controller in parts[1].split(separator: ",", omittingEmptySubsequences: false) {
                result[String(controller)] = String(parts[2])
            }
        }
        return result
    }

    /// Writes `value` to a cgroup file; false with errno set when it could not.
    package static func write(_ value: String, to path: String) -> Bool {
        // O_TRUNC as a shell's `>`: cgroupfs ignores it; a plain file (tests' fake trees) needs it.
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return value.withCString { Glibc.write(fd, $0, strlen($0)) } >= 0
    }
}
