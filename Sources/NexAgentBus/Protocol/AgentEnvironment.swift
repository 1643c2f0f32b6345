/// The environment variables the node starts `nex-agent` with.
///
/// The agent's nkey seed travels only here, never on a command line (where `ps` would show it).
public enum AgentEnvironment {
    /// The bus URL, `nats://127.0.0.1:<port>` (always loopback).
    public static let busURL = "NEX_AGENT_BUS_URL"
    /// A descriptor connected to the bus (a socket pair's end, `3`), used instead of dialing
    /// ``busURL``: how a sandboxed agent reaches its bus.
    public static let busDescriptor = "NEX_AGENT_BUS_FD"
    /// A Unix socket (`SOCK_SEQPACKET`) on which the node hands the agent sockets it has
    /// connected (`SCM_RIGHTS`): a function's own connection to the NATS server, for
    /// ``AgentTriggerSetup``. The agent never dials the server itself.
    public static let socketDescriptor = "NEX_AGENT_SOCKET_FD"
    /// What ``busURL`` says when ``busDescriptor`` is set: a name for logs, never dialed.
    public static let socketPairURL = "nats://agent-bus.socketpair"
    /// The agent's id: its subjects are `agentint.<id>.>` and `hostint.<id>.>`.
    public static let agentID = "NEX_AGENT_ID"
    /// The agent's nkey user seed (`SU...`), its only credential on the bus.
    public static let nkeySeed = "NEX_AGENT_NKEY_SEED"
    /// The agent's private directory; the node places its workload's artifact inside it
    /// (read-only to a sandboxed agent).
    public static let directory = "NEX_AGENT_DIR"
    /// Where the workload starts (a sandbox's private writable directory); unset: ``directory``.
    public static let workDirectory = "NEX_AGENT_WORK_DIR"
    /// The node's pid: the agent exits when its parent is no longer this process. `0` for
    /// a sandboxed agent, whose parent lies outside its pid namespace (`getppid()` is 0 there;
    /// its parent-death signal tells it the node is gone).
    public static let nodePID = "NEX_NODE_PID"

    /// The signal the agent receives when its node dies (`PR_SET_PDEATHSIG`, set by the node
    /// when it spawns the agent): the agent kills its workload's whole tree and exits.
    public static let parentDeathSignal: Int32 = 1 // SIGHUP

    /// The inbox prefix agent `<id>` must use; the bus lets it subscribe only there and to `agentint.<id>.>`.
    public static func inboxPrefix(agentID: String) -> String { "_INBOX.\(agentID)" }
}
