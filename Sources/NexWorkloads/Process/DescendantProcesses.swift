#if canImport(Glibc)
import Glibc
#endif
import CProcessSpawn

/// Every process started, directly or not, by this one: found by walking `/proc`, killed at
/// once, and reaped when they were re-parented here.
///
/// A workload can leave its process group (`setsid`) or double-fork; its descendants then
/// escape a signal to the group. An agent makes itself a child subreaper
/// (``becomeSubreaper()``): such orphans are re-parented to the agent instead of init, so they
/// stay in its tree, and ``killAll(keeping:)`` finds and kills them at stop.
public enum DescendantProcesses {
    /// One process as `/proc/<pid>/stat` shows it.
    struct Entry: Equatable {
        var pid: pid_t
        var parent: pid_t
        /// A zombie (exited, not yet reaped).
        var isZombie: Bool
    }

    /// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`). Throws the errno's text.
    public static func becomeSubreaper() throws(SubreaperError) {
        let code = nex_become_subreaper()
        guard code == 0 else { throw SubreaperError(code: code) }
    }

    /// Why ``becomeSubreaper()`` failed.
    public struct SubreaperError: Error, CustomStringConvertible {
        public var code: Int32
        public var description: String { "cannot become a child subreaper: prctl: \(String(cString: strerror(code)))" }
    }

    /// The descendants of `ancestor` (this process by default), zombies included.
    static func entries(of ancestor: pid_t = getpid()) -> [Entry] {
        var children: [pid_t: [Entry]] = [:]
        for entry in allProcesses() { children[entry.parent, default: []].append(entry) }
        var result: [Entry] = []
        var pending = [ancestor]
        while let next = pending.popLast() {
            for child in children[next] ?? [] where child.pid != ancestor {
                result.append(child)
                pending.append(child.pid)
            }
        }
        return result
    }

    /// SIGKILLs every descendant of this process, round after round (a process may fork while
    /// its parent is being killed; its child is re-parented here and found next round), until
    /// none is alive, reaping the orphans among them. Pids in `keeping` are killed but not
    /// reaped (their owner, a ``ChildProcess``, reaps them). Returns how many were killed.
    @discardableResult
    public static func killAll(keeping: Set<pid_t> = []) -> Int {
        var killed = Set<pid_t>()
        for round in 0..<1000 {
            let live = entries().filter { !$0.isZombie }
            if live.isEmpty { break }
            // Stop them all first, so none can fork between being seen and being killed.
            for entry in live { kill(entry.pid, SIGSTOP) }
            for entry in live {
                kill(entry.pid, SIGKILL)
                killed.insert(entry.pid)
            }
            reapOrphans(keeping: keeping)
            if round > 0 { usleep(1_000) }
        }
        reapOrphans(keeping: keeping)
        return killed.count
    }

    /// Reaps this process's zombie children other than `keeping` (orphans re-parented to a
    /// subreaper stay zombies until their new parent waits for them).
    public static func reapOrphans(keeping: Set<pid_t>) {
        let me = getpid()
        for entry in allProcesses() where entry.parent == me && entry.isZombie && !keeping.contains(entry.pid) {
            var status: Int32 = 0
            waitpid(entry.pid, &status, WNOHANG)
        }
    }

    /// For a child subreaper that keeps its own children (the node and its agents): SIGKILLs
    /// the whole tree of every child that is not in `keeping` and was already such an orphan
    /// at the previous sweep (`suspects`; seen twice, so a child spawned a moment ago and not
    /// yet in `keeping` is never taken for one), then reaps them. Returns the orphans seen now.
    public static func killOrphans(keeping: Set<pid_t>, suspects: Set<pid_t>) -> Set<pid_t> {
        let me = getpid()
        let orphans = Set(allProcesses().filter { $0.parent == me && !$0.isZombie && !keeping.contains($0.pid) }.map(\.pid))
        for orphan in orphans.intersection(suspects) {
            kill(orphan, SIGSTOP)
            for entry in entries(of: orphan) where !entry.isZombie { kill(entry.pid, SIGKILL) }
            kill(orphan, SIGKILL)
        }
        reapOrphans(keeping: keeping)
        return orphans.subtracting(suspects)
    }

    /// Every process in `/proc`.
    static func allProcesses() -> [Entry] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var result: [Entry] = []
        while let item = readdir(directory) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = pid_t(name), let entry = read(pid) else { continue }
            result.append(entry)
        }
        return result
    }

    /// `/proc/<pid>/stat`: the state and the parent follow the command name's last `)`.
    static func read(_ pid: pid_t) -> Entry? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard count > 0, let close = buffer[0..<count].lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = buffer[(close + 1)..<count].split(separator: UInt8(ascii: " "))
        guard fields.count >= 2, let state = fields[0].first,
              let parent = pid_t(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        return Entry(pid: pid, parent: parent, isZombie: state == UInt8(ascii: "Z") || state == UInt8(ascii: "X"))
    }
}
