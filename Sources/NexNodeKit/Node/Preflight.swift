import NexWorkloads
#if canImport(Glibc)
import Glibc
#endif
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
        var checks: [Check] = [stateDirectoryCheck(stateDirectory)]
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
        checks.append(javaScriptCoreCheck())
        checks.append(userNamespacesCheck())
        checks.append(seccompCheck())
        checks.append(contentsOf: sandboxChecks(sandboxed: sandboxed))
        return checks
    }

    /// The state directory holds the node's identity keys: it must exist, belong to the node's
    /// user and be closed to group and others. Only looked at, never made.
    static func stateDirectoryCheck(_ path: String) -> Check {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return Check(name: "state directory", passed: false, detail: "\(path) does not exist",
                         fix: "sudo nex-node preflight --init (makes it for the node's user), or pass --state-dir DIR")
        }
        let owner = getpwuid(info.st_uid).map { String(cString: $0.pointee.pw_name) } ?? "uid \(info.st_uid)"
        let mode = String(info.st_mode & 0o777, radix: 8)
        guard info.st_mode & S_IFMT == S_IFDIR else {
            return Check(name: "state directory", passed: false, detail: "\(path) is not a directory", fix: "pass --state-dir DIR")
        }
        guard info.st_uid == geteuid() || geteuid() == 0 else {
            return Check(name: "state directory", passed: false, detail: "\(path): owner \(owner), not this user: the node could not write its keys",
                         fix: "run preflight as the node's user, or chown it to that user")
        }
        guard info.st_mode & 0o077 == 0 else {
            return Check(name: "state directory", passed: false, detail: "\(path): owner \(owner), mode \(mode): group or others may read the node's keys",
                         fix: "chmod 700 \(path)")
        }
        return Check(name: "state directory", passed: true, detail: "\(path): owner \(owner), mode \(mode)")
    }

    /// nex-agent runs JavaScript functions on JavaScriptCore (libjavascriptcoregtk-4.1).
    static func javaScriptCoreCheck() -> Check {
        if let handle = dlopen("libjavascriptcoregtk-4.1.so.0", RTLD_LAZY) {
            dlclose(handle)
            return Check(name: "JavaScriptCore", passed: true, detail: "libjavascriptcoregtk-4.1.so.0 (javascript and v8 functions)")
        }
        return Check(name: "JavaScriptCore", passed: false, detail: "libjavascriptcoregtk-4.1.so.0 not found: nex-agent cannot start",
                     fix: "apt-get install libjavascriptcoregtk-4.1-0")
    }

    static func userNamespacesCheck() -> Check {
        let maximum = SandboxCgroup.read("/proc/sys/user/max_user_namespaces").flatMap { Int($0) }
        let unprivileged = SandboxCgroup.read("/proc/sys/kernel/unprivileged_userns_clone")
        guard let maximum, maximum > 0 else {
            return Check(name: "user namespaces", passed: false, detail: "off (user.max_user_namespaces is \(maximum.map(String.init) ?? "unreadable"))",
                         fix: "sysctl -w user.max_user_namespaces=15000")
        }
        if unprivileged == "0" {
            return Check(name: "user namespaces", passed: false, detail: "only for root (kernel.unprivileged_userns_clone=0)",
                         fix: "sysctl -w kernel.unprivileged_userns_clone=1, or run the node as root")
        }
        return Check(name: "user namespaces", passed: true, detail: "up to \(maximum)")
    }

    static func seccompCheck() -> Check {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        guard status.contains("Seccomp:") else {
            return Check(name: "seccomp", passed: false, detail: "the kernel has no seccomp",
                         fix: "a kernel built with CONFIG_SECCOMP_FILTER")
        }
        let actions = SandboxCgroup.read("/proc/sys/kernel/seccomp/actions_avail")
        return Check(name: "seccomp", passed: true, detail: actions.map { "filters (\($0))" } ?? "filters")
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
