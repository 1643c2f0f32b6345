import NexWorkloads
import FoundationEssentials
import NATSWire
import NexControl

/// `nex-node preflight`: what the node needs, each check with a fix when it fails.
public enum Preflight {
    public struct Check: Sendable {
        public var name: String
        public var passed: Bool
        public var detail: String
        /// What to do when it failed.
        public var fix: String?
    }

    public static func run(control: ControlConnectionSettings, stateDirectory: String, dev: Bool,
                           agentPath: String? = nil, sandboxed: Bool = true) async -> [Check] {
        var checks: [Check] = []
        do {
            try StateDirectory.prepare(stateDirectory)
            checks.append(Check(name: "state directory", passed: true, detail: "\(stateDirectory) is writable"))
        } catch {
            checks.append(Check(name: "state directory", passed: false, detail: "\(error)",
                                fix: "create it writable by the node's user, or pass --state-dir DIR"))
        }
        if dev {
            if let binary = DevNATSServer.binaryPath {
                checks.append(Check(name: "nats-server for --dev", passed: true, detail: binary))
            } else {
                checks.append(Check(name: "nats-server for --dev", passed: false, detail: "not found",
                                    fix: "apt-get install nats-server, or set NATS_SERVER_BIN"))
            }
        } else {
            checks.append(await controlCheck(control))
        }
        if let agent = AgentExecutable.locate(configured: agentPath) {
            checks.append(Check(name: "nex-agent", passed: true, detail: agent))
        } else {
            checks.append(Check(name: "nex-agent", passed: false, detail: "not found beside nex-node or on PATH",
                                fix: agentPath.map { "agent_path is \($0): make it an executable nex-agent" }
                                    ?? "install nex-agent next to nex-node (swift build puts them together)"))
        }
        checks.append(contentsOf: sandboxChecks(sandboxed: sandboxed))
        return checks
    }

    /// What the host offers for isolation and what the node will use.
    static func sandboxChecks(sandboxed: Bool) -> [Check] {
        var checks: [Check] = []
        let cgroups = WorkloadCgroup.describe()
        checks.append(Check(name: "cgroups", passed: true, detail: cgroups))
        guard sandboxed else {
            checks.append(Check(name: "sandbox", passed: true,
                                detail: "off (no_sandbox): workloads run as the node's user, tagged nex.unsafe=true"))
            return checks
        }
        do {
            let sandbox = try NodeSandbox.prepare()
            let mapping = sandbox.idMapping == .direct ? "written by the node (root)" : "newuidmap/newgidmap"
            checks.append(Check(name: "sandbox", passed: true, detail:
                "user, pid, mount, ipc and uts namespaces, seccomp, no capabilities; uids \(sandbox.identities.uids), "
                + "gids \(sandbox.identities.gids), id maps \(mapping)"))
            if let hierarchies = sandbox.cgroups {
                checks.append(Check(name: "sandbox cgroups", passed: true, detail:
                    "cgroup \(hierarchies.version): memory, pids and cpu limits enforced per sandbox under "
                    + Set(hierarchies.bases.values).sorted().joined(separator: ", ")))
            } else {
                checks.append(Check(name: "sandbox cgroups", passed: false,
                                    detail: "none: \(sandbox.cgroupProblem ?? "unknown"); memory and processes fall back to rlimits, CPU limits are refused",
                                    fix: "give the node's user a delegated cgroup (systemd: Delegate=yes, as dist/nex-node.service does)"))
            }
        } catch {
            for problem in error.problems {
                checks.append(Check(name: "sandbox", passed: false, detail: "missing: \(problem.missing)", fix: problem.fix))
            }
        }
        return checks
    }

    private static func controlCheck(_ control: ControlConnectionSettings) async -> Check {
        do {
            var options = try control.clientOptions()
            options.allowReconnect = false
            options.connectTimeout = .seconds(3)
            let client = try NATSClient(options: options)
            try await client.connect()
            let detail = "\(client.connectedServer ?? "") (nats-server \(client.serverInfo?.version ?? "?"))"
            await client.close()
            return Check(name: "control NATS", passed: true, detail: detail)
        } catch {
            return Check(name: "control NATS", passed: false, detail: "\(error)",
                         fix: "start a nats-server, pass -s URL and credentials, or run with --dev")
        }
    }
}
