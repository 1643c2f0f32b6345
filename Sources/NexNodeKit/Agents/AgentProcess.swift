#if canImport(Glibc)
import Glibc
#endif
import NexWorkloads
import NATSWire
import NexAgentBus

/// One `nex-agent` process the node started, with its bus identity.
struct AgentProcess: Sendable {
    let id: String
    let key: NKeyPair
    let process: ChildProcess
    /// Its private directory (0700); artifacts for its workload are placed here.
    let directory: String
    /// The uid and gid of its sandbox; nil when it runs unsandboxed.
    let sandboxIdentity: SandboxIdentity?
    /// Its sandbox's cgroup, where the node sets its workload's limits; nil when unsandboxed or
    /// the node may make no cgroups.
    let cgroup: SandboxCgroup?
    /// Where the node hands it connected sockets; nil without `direct_triggers`.
    let socketChannel: AgentSocketChannel?
}

extension AgentProcess {
    /// What its sandbox uses (its cgroup), or without one the agent process itself (with the
    /// children it has waited for) from `/proc`.
    func usage() -> ResourceUsage {
        if let cgroup { return cgroup.usage() }
        return ResourceUsage(cpuSeconds: ProcessUsage.cpuSeconds(of: [process.pid]),
                             memoryBytes: ProcessUsage.residentBytes(of: process.pid))
    }
}

/// CPU time and memory of processes, from `/proc`.
enum ProcessUsage {
    /// The CPU time of `pids`, with the children each has waited for (`utime`, `stime`,
    /// `cutime`, `cstime`); nil when none could be read.
    static func cpuSeconds(of pids: [pid_t]) -> Double? {
        var ticks = 0.0, found = false
        for pid in pids {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let end = stat.lastIndex(of: ")") else { continue }
            // Fields after "(comm)": state is field 3; utime, stime, cutime, cstime are 14 to 17.
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            guard fields.count > 14 else { continue }
            ticks += fields[11...14].compactMap { Double($0) }.reduce(0, +)
            found = true
        }
        return found ? ticks / Double(sysconf(Int32(_SC_CLK_TCK))) : nil
    }

    /// Resident memory of `pid`.
    static func residentBytes(of pid: pid_t) -> Int? {
        guard let statm = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// What the supervisor reports about its agents.
enum AgentNotice: Sendable {
    /// An agent ended (crashed, was killed, or exited after its workload). `status` is the
    /// exit status, negative for a signal.
    case exited(agentID: String, status: Int32)
    /// An agent stopped answering pings and was killed.
    case unresponsive(agentID: String)
}

/// The socket pair of a sandboxed agent's bus connection: the node's end is served by the bus,
/// the agent's end becomes the agent's descriptor 3 and is closed here once it is started.
struct BusSocketPair {
    let nodeEnd: Int32
    let agentEnd: Int32

    init() throws {
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw AgentSupervisorError.busSocket(reason: String(cString: strerror(errno)))
        }
        nodeEnd = ends[0]
        agentEnd = ends[1]
    }

    func closeAgentEnd() { close(agentEnd) }
}
