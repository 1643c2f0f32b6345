#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import NexWorkloads

/// How this node sandboxes its agents (and so their workloads): the ids it hands out and how
/// it maps them. Built once at start by ``prepare()``, which refuses with what the host lacks.
///
/// Each agent gets a ``Sandbox``: its own uid and gid, the system directories read-only, the
/// `nex-agent` executable and the runtime libraries it links, its own directory read-only (the
/// node places the artifact there), and private `/tmp` and ``workDirectory``. See
/// `docs/isolation.md`.
public struct NodeSandbox: Sendable {
    /// Where a sandboxed workload starts: a private tmpfs.
    public static let workDirectory = "/work"

    let identities: SandboxIdentities
    let idMapping: Sandbox.IDMapping
    /// Library directories the agent needs that are not system directories (a toolchain's
    /// Swift runtime, for a build that links it dynamically).
    let libraryDirectories: [String]
    /// Where each sandbox gets its cgroup; nil when the node may make none (``cgroupProblem``
    /// says why): memory and processes then fall back to rlimits, and CPU limits are refused.
    let cgroups: SandboxCgroup.Hierarchies?
    let cgroupProblem: String?

    /// What the host lacks for a sandbox, each with how to fix it.
    public struct Unavailable: Error, CustomStringConvertible {
        public var problems: [(missing: String, fix: String)]
        public var description: String {
            "this host cannot sandbox workloads (set no_sandbox: true to run them unsandboxed, tagged nex.unsafe): "
                + problems.map { "\($0.missing) (fix: \($0.fix))" }.joined(separator: "; ")
        }
    }

    /// Checks the host (user namespaces, seccomp, an id range and, for a node that is not
    /// root, newuidmap and newgidmap), then starts one throw-away sandbox to prove it works.
    public static func prepare() throws(Unavailable) -> NodeSandbox {
        var problems: [(missing: String, fix: String)] = []
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        if !status.contains("\nSeccomp:") {
            problems.append(("seccomp", "a kernel built with CONFIG_SECCOMP_FILTER"))
        }
        if Self.sysctl("/proc/sys/user/max_user_namespaces") == "0" {
            problems.append(("user namespaces (user.max_user_namespaces is 0)", "sysctl -w user.max_user_namespaces=15000"))
        }
        let uid = getuid()
        let user = userName(of: uid)
        let mapping: Sandbox.IDMapping
        var uids = SubordinateIDRange.read("/etc/subuid", user: user, uid: uid)
        var gids = SubordinateIDRange.read("/etc/subgid", user: user, uid: uid)
        if uid == 0 {
            mapping = .direct
            // Without a range of its own, root takes one nobody was given: ids of a user's
            // subordinate range could be that user's to signal or trace.
            let fallback = SubordinateIDRange.forRoot()
            uids = uids ?? fallback
            gids = gids ?? fallback
        } else {
            if Self.sysctl("/proc/sys/kernel/unprivileged_userns_clone") == "0" {
                problems.append(("unprivileged user namespaces (kernel.unprivileged_userns_clone is 0)",
                                 "sysctl -w kernel.unprivileged_userns_clone=1"))
            }
            let newuidmap = ExecutableLookup.find("newuidmap"), newgidmap = ExecutableLookup.find("newgidmap")
            if newuidmap == nil || newgidmap == nil {
                problems.append(("newuidmap and newgidmap", "apt-get install uidmap"))
            }
            mapping = .helpers(newuidmap: newuidmap ?? "/usr/bin/newuidmap", newgidmap: newgidmap ?? "/usr/bin/newgidmap")
            if uids == nil || gids == nil {
                problems.append(("a subordinate id range for user \(user) in /etc/subuid and /etc/subgid",
                                 "run `nex-node preflight --init --node-user \(user)` as root"))
            }
        }
        guard problems.isEmpty, let uids, let gids else { throw Unavailable(problems: problems) }
        let cgroups = SandboxCgroup.Hierarchies.find()
        let identities: SandboxIdentities
        do {
            identities = try SandboxIdentities(uids: uids, gids: gids)
        } catch {
            throw Unavailable(problems: [("\(error)", "remove it, or set RUNTIME_DIRECTORY to a directory of the node's own")])
        }
        let sandbox = NodeSandbox(identities: identities, idMapping: mapping,
                                  libraryDirectories: runtimeLibraryDirectories(), cgroups: cgroups.hierarchies,
                                  cgroupProblem: cgroups.problem)
        try sandbox.probe()
        return sandbox
    }

    /// A sysctl's value (its first line), nil when the kernel has none.
    private static func sysctl(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").first.map(String.init)
    }

    /// Starts `/bin/true` in a sandbox of its own and waits for it.
    private func probe() throws(Unavailable) {
        guard let identity = identities.acquire() else {
            throw Unavailable(problems: [("a free id in \(identities.uids)", "stop other nodes of this user, or give it a larger range")])
        }
        defer { identities.release(identity) }
        let sandbox = Sandbox(uid: identity.uid, gid: identity.gid, idMapping: idMapping, binds: Sandbox.systemBinds())
        do {
            let child = try ChildProcess(executable: "/bin/true", arguments: [], environment: [:],
                                         options: SpawnOptions(sandbox: sandbox))
            while child.isRunning { usleep(1_000) }
            guard child.exitStatus == 0 else {
                throw Unavailable(problems: [("a working sandbox (a test sandbox exited with \(child.exitStatus ?? -1))", "see docs/isolation.md")])
            }
        } catch let error as Unavailable {
            throw error
        } catch let error as ChildProcess.SpawnError {
            throw Unavailable(problems: [("a working sandbox (\(error.step): \(String(cString: strerror(error.code))))",
                                          Self.fix(forFailedStep: error.step))])
        } catch {
            throw Unavailable(problems: [("a working sandbox (\(error))", "see docs/isolation.md")])
        }
    }

    static func fix(forFailedStep step: String) -> String {
        switch step {
        case "clone":
            "allow user namespaces (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone; "
                + "under systemd, no RestrictNamespaces= in the unit)"
        case "uid_map", "gid_map":
            "newuidmap/newgidmap refused the mapping: check /etc/subuid and /etc/subgid for the node's user; "
                + "under systemd they need NoNewPrivileges=no and CAP_SETUID CAP_SETGID in CapabilityBoundingSet="
        case "seccomp": "a kernel with seccomp filters"
        default: "see docs/isolation.md (the step that failed: \(step))"
        }
    }

    /// The sandbox of one agent.
    func sandbox(for identity: SandboxIdentity, agentExecutable: String, agentDirectory: String) -> Sandbox {
        var binds = Sandbox.systemBinds()
        for directory in libraryDirectories { binds.append(Sandbox.Bind(source: directory)) }
        binds.append(Sandbox.Bind(source: Sandbox.resolve(agentExecutable) ?? agentExecutable, target: agentExecutable))
        binds.append(Sandbox.Bind(source: Sandbox.resolve(agentDirectory) ?? agentDirectory, target: agentDirectory))
        return Sandbox(uid: identity.uid, gid: identity.gid, idMapping: idMapping, hostname: "nex-agent",
                       binds: binds, scratch: ["/tmp", Self.workDirectory])
    }

    /// Directories of the shared libraries this process has mapped outside the system
    /// directories: the Swift runtime of a toolchain (e.g. /opt/swift/usr/lib/swift/linux),
    /// which `nex-agent` links too when the build is not static.
    static func runtimeLibraryDirectories() -> [String] {
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return [] }
        var directories: [String] = []
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            guard path.contains(".so"), !Sandbox.systemDirectories.contains(where: { path.hasPrefix($0 + "/") }),
                  let end = path.lastIndex(of: "/") else { continue }
            let directory = String(path[..<end])
            if !directory.isEmpty, !directories.contains(directory) { directories.append(directory) }
        }
        return directories
    }
}
