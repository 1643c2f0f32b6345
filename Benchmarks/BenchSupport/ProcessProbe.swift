import Foundation

/// What a benchmark reads about a process from /proc: memory, descriptors, threads, and the
/// processes under it.
public enum ProcessProbe {
    /// Resident memory (`VmRSS`), KiB; 0 when the process is gone.
    public static func rssKB(_ pid: Int32) -> Int { statusField(pid, "VmRSS:") }

    /// Threads (`Threads` of /proc/<pid>/status).
    public static func threads(_ pid: Int32) -> Int { statusField(pid, "Threads:") }

    /// Open file descriptors (entries of /proc/<pid>/fd).
    public static func openDescriptors(_ pid: Int32) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
    }

    /// A field of /proc/<pid>/smaps_rollup (`Pss:`, `Private_Dirty:`), KiB.
    public static func rollupKB(_ pid: Int32, _ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(field) {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        return 0
    }

    /// CPU time the process has used (user + system, from /proc/<pid>/stat), microseconds;
    /// 0 when the process is gone.
    public static func cpuMicroseconds(_ pid: Int32) -> Int {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // After "(comm) ": state is field 3; utime and stime are fields 14 and 15 (clock ticks).
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return 0 }
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return (user + system) * 1_000_000 / max(ticks, 1)
    }

    /// The direct children of `pid`, optionally only those whose command is `command`.
    public static func children(of pid: Int32, command: String? = nil) -> [Int32] {
        parents().compactMap { child, parent, name in
            parent == pid && (command == nil || name == command) ? child : nil
        }
    }

    /// Every process below `pid` (children, their children, …).
    public static func descendants(of pid: Int32) -> [Int32] {
        let table = parents()
        var found: [Int32] = []
        var frontier: Set<Int32> = [pid]
        while !frontier.isEmpty {
            let next = table.filter { frontier.contains($0.parent) }.map(\.pid)
            found += next
            frontier = Set(next)
        }
        return found
    }

    private static func statusField(_ pid: Int32, _ field: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(field) {
            // "VmRSS:\t  1234 kB", "Threads:\t7": the first number after the name.
            let value = line.dropFirst(field.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
            return value.flatMap { Int($0) } ?? 0
        }
        return 0
    }

    /// (pid, parent pid, command) of every process.
    private static func parents() -> [(pid: Int32, parent: Int32, name: String)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 1, let parent = Int32(fields[1]) else { return nil }
            return (pid, parent, String(stat[stat.index(after: open)..<close]))
        }
    }
}
