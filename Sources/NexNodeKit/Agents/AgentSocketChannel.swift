#if canImport(Glibc)
import Glibc
#endif
import CProcessSpawn
import Synchronization

/// The node's end of an agent's socket channel (``AgentEnvironment/socketDescriptor``): a
/// `SOCK_SEQPACKET` socket pair on which the node hands the agent sockets it has connected.
///
/// The descriptor is used and closed only under the lock, so a send after the agent is gone
/// fails instead of reaching whatever later reuses the descriptor's number.
final class AgentSocketChannel: Sendable {
    private let nodeEnd: Mutex<Int32>
    /// The agent's end: passed to the agent at spawn, then closed here (``closeAgentEnd()``).
    let agentEnd: Int32

    init() throws {
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw AgentSupervisorError.busSocket(reason: "socket channel: \(String(cString: strerror(errno)))")
        }
        nodeEnd = Mutex(ends[0])
        agentEnd = ends[1]
    }

    /// Sends a copy of `descriptor` to the agent (the caller keeps and closes its own).
    func send(_ descriptor: Int32) throws(DirectTriggerSetupError) {
        let error = nodeEnd.withLock { end -> Int32 in
            end < 0 ? EBADF : nex_send_descriptor(end, descriptor)
        }
        guard error == 0 else {
            throw DirectTriggerSetupError("cannot hand the socket to the agent: \(String(cString: strerror(error)))")
        }
    }

    func closeAgentEnd() { Glibc.close(agentEnd) }

    /// Closes the node's end (the agent is gone).
    func close() {
        nodeEnd.withLock { end in
            if end >= 0 { Glibc.close(end) }
            end = -1
        }
    }
}
