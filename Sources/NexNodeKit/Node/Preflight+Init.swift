import FoundationEssentials
import NexWorkloads
#if canImport(Glibc)
import Glibc
#endif

/// `nex-node preflight --init` (as root): makes what an unprivileged node needs, and changes
/// nothing that is already there: the node's system user, its state directory (owned by it,
/// mode 0700), a default config file (never overwritten), a subordinate uid and gid range for
/// its sandboxes, and a delegated cgroup it may make its sandboxes' cgroups in.
public struct NodeInitialization: Sendable {
    public var user: String
    public var stateDirectory: String
    public var configPath: String
    /// `/etc/subuid` and `/etc/subgid` (tests give others).
    public var subordinateIDFiles = (uid: "/etc/subuid", gid: "/etc/subgid")
    /// Where the cgroup hierarchies are mounted.
    public var cgroupRoot = "/sys/fs/cgroup"
    /// The delegated cgroup's name in each hierarchy.
    public var cgroupName = "nex-node"

    public init(user: String, stateDirectory: String, configPath: String) {
        self.user = user
        self.stateDirectory = stateDirectory
        self.configPath = configPath
    }

    /// One thing done or found, as preflight prints it.
    public struct Step: Sendable {
        public var passed: Bool
        public var text: String
    }

    /// Runs every step; a failed step is reported and the others still run.
    public func run() -> [Step] {
        var steps: [Step] = []
        func attempt(_ body: () throws -> String) {
            do { steps.append(Step(passed: true, text: try body())) } catch { steps.append(Step(passed: false, text: "\(error)")) }
        }
        attempt(ensureUser)
        guard let account = Self.account(user) else { return steps }
        attempt { try ensureStateDirectory(owner: account) }
        attempt(ensureConfig)
        attempt {
            let ranges = try SubordinateIDRange.ensure(user: user, files: subordinateIDFiles)
            return "sandbox ids for \(user): uids \(ranges.uids), gids \(ranges.gids)"
        }
        attempt { try ensureCgroup(owner: account) }
        return steps
    }

    static func account(_ user: String) -> (uid: uid_t, gid: gid_t)? {
        guard let entry = getpwnam(user) else { return nil }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    private func ensureUser() throws -> String {
        if let account = Self.account(user) { return "user \(user) exists (uid \(account.uid))" }
        guard !user.isEmpty, user.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }), user.first?.isLetter == true else {
            throw InitError("'\(user)' is not a user name useradd takes")
        }
        let status = Self.runTool("/usr/sbin/useradd", ["--system", "--user-group", "--no-create-home",
                                                        "--home-dir", stateDirectory, "--shell", "/usr/sbin/nologin", user])
        guard status == 0, let account = Self.account(user) else {
            throw InitError("useradd \(user) failed (status \(status)): create the user by hand")
        }
        return "created system user \(user) (uid \(account.uid))"
    }

    /// Makes the state directory, or takes one that is the node's already or empty and root's;
    /// never follows a symbolic link, and never takes over a directory someone else filled.
    private func ensureStateDirectory(owner: (uid: uid_t, gid: gid_t)) throws -> String {
        guard stateDirectory.hasPrefix("/"), stateDirectory != "/" else {
            throw InitError("the state directory must be an absolute path other than /, not '\(stateDirectory)'")
        }
        var created = false
        var info = stat()
        if lstat(stateDirectory, &info) != 0 {
            let parent = String(stateDirectory[..<(stateDirectory.lastIndex(of: "/") ?? stateDirectory.startIndex)])
            if !parent.isEmpty { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) }
            guard mkdir(stateDirectory, 0o700) == 0 else {
                throw InitError("cannot make \(stateDirectory): \(String(cString: strerror(errno)))")
            }
            created = true
        } else if info.st_mode & S_IFMT != S_IFDIR {
            throw InitError("\(stateDirectory) exists and is not a directory (a symbolic link is not followed)")
        } else if info.st_uid != owner.uid {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: stateDirectory)) ?? ["?"]
            guard info.st_uid == 0, entries.isEmpty else {
                throw InitError("\(stateDirectory) exists, belongs to uid \(info.st_uid) and is not empty: not taking it over; choose another --state-dir")
            }
        }
        // Opened without following links, changed through the descriptor: no race with a swap.
        let fd = open(stateDirectory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw InitError("cannot open \(stateDirectory): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fchown(fd, owner.uid, owner.gid) == 0, fchmod(fd, 0o700) == 0 else {
            throw InitError("cannot give \(stateDirectory) to \(user): \(String(cString: strerror(errno)))")
        }
        return "\(created ? "created" : "kept") state directory \(stateDirectory), owner \(user), mode 0700"
    }

    private func ensureConfig() throws -> String {
        if FileManager.default.fileExists(atPath: configPath) { return "kept config \(configPath) (not overwritten)" }
        let directory = String(configPath[..<(configPath.lastIndex(of: "/") ?? configPath.startIndex)])
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        guard FileManager.default.createFile(atPath: configPath, contents: Data(Self.defaultConfig(stateDirectory: stateDirectory).utf8),
                                             attributes: [.posixPermissions: 0o644]) else {
            throw InitError("cannot write \(configPath)")
        }
        return "wrote default config \(configPath)"
    }

    /// The config `--init` writes: every key it sets is one an operator will want to look at.
    public static func defaultConfig(stateDirectory: String) -> String {
        """
        {
          "state_dir": "\(stateDirectory)",
          "workload_types": ["native", "wasm", "javascript"],
          "valid_issuers": [],
          "machine_pool_size": 1,
          "node_limits": {"max_workloads": 64, "max_workload_bytes": 104857600},
          "workload_limits": {"memory_bytes": 268435456, "processes": 256},
          "otel_metrics": false,
          "otel_metrics_port": 8085
        }

        """
    }

    /// Makes `<root>/<controller>/nex-node` (v1: memory, pids, cpu; v2: one directory with those
    /// controllers enabled) and gives it to the user, so a node started in it may make its
    /// sandboxes' cgroups there (systemd's `Delegate=yes` does the same for the unit).
    private func ensureCgroup(owner: (uid: uid_t, gid: gid_t)) throws -> String {
        let v2 = FileManager.default.fileExists(atPath: cgroupRoot + "/cgroup.controllers")
        let directories = v2 ? [cgroupRoot + "/" + cgroupName]
            : SandboxCgroup.Hierarchies.controllers.map { "\(cgroupRoot)/\($0)/\(cgroupName)" }
        if v2 {
            let wanted = SandboxCgroup.Hierarchies.controllers.map { "+" + $0 }.joined(separator: " ")
            _ = try? wanted.write(toFile: cgroupRoot + "/cgroup.subtree_control", atomically: false, encoding: .utf8)
        }
        for directory in directories {
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                throw InitError("cannot make cgroup \(directory): \(String(cString: strerror(errno)))")
            }
            for file in ["", "/cgroup.procs", "/tasks", "/cgroup.subtree_control", "/cgroup.threads"] {
                let path = directory + file
                if file.isEmpty || FileManager.default.fileExists(atPath: path) {
                    guard chown(path, owner.uid, owner.gid) == 0 else {
                        throw InitError("cannot give \(path) to \(user): \(String(cString: strerror(errno)))")
                    }
                }
            }
            if v2 {
                let wanted = SandboxCgroup.Hierarchies.controllers.map { "+" + $0 }.joined(separator: " ")
                _ = try? wanted.write(toFile: directory + "/cgroup.subtree_control", atomically: false, encoding: .utf8)
            }
        }
        return "delegated cgroup \(directories.joined(separator: ", ")) owned by \(user); start the node in it "
            + "(systemd: Delegate=yes; by hand: echo $PID > each cgroup.procs)"
    }

    static func runTool(_ path: String, _ arguments: [String]) -> Int32 {
        guard FileManager.default.isExecutableFile(atPath: path) else { return 127 }
        var pid = pid_t()
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, path, nil, nil, argv, environ) == 0 else { return 126 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

struct InitError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
