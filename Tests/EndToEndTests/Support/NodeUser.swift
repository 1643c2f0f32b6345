import Foundation
import NATSTestSupport
import NexWorkloads
import Synchronization

/// The unprivileged user every end-to-end node runs as, as in production (`User=nex` in
/// `dist/nex-node.service`, no capabilities).
///
/// CI runs the suite as root, where a root-only bug (a socket option that needs
/// CAP_NET_ADMIN, a file only root can read) would pass every test. So when the tests run as
/// root, each `nex-node` is started through `setpriv` as uid/gid 65534 (nobody/nogroup) with
/// no supplementary groups and no inheritable capabilities, and its agents and workloads
/// inherit that. When the tests already run unprivileged, the node runs as the same user.
///
/// An unprivileged node cannot reach into root's private directories, so:
/// - `nex-node` and `nex-agent` are linked (or copied) into a world-readable directory
///   (the build directory may sit under a 0700 checkout);
/// - state directories and workload artifacts are created for, and handed to, that user;
/// - artifacts live under ``artifactRoot``, the one directory nodes get as `--allow-file-root`.
enum NodeUser {
    static let uid: uid_t = 65534
    static let gid: gid_t = 65534

    /// Whether the tests drop privileges for the node (they run as root).
    static var dropsPrivileges: Bool { geteuid() == 0 }

    /// `executable arguments...` as the node's user: wrapped in `setpriv` when running as root.
    static func command(_ executable: String, _ arguments: [String]) -> (executable: String, arguments: [String]) {
        guard dropsPrivileges else { return (executable, arguments) }
        return ("/usr/bin/setpriv",
                ["--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--inh-caps=-all", "--", executable] + arguments)
    }

    /// `nex-node` in a directory the node's user can read, with `nex-agent` beside it.
    static var nexNode: String {
        get throws { try binaries().appending("/nex-node") }
    }

    /// `nexctl`, beside them.
    static var nexctl: String {
        get throws { try binaries().appending("/nexctl") }
    }

    private static let prepared = Mutex<String?>(nil)

    private static func binaries() throws -> String {
        try prepared.withLock { cached in
            if let cached { return cached }
            let node = try Executables.nexNode
            guard dropsPrivileges else {
                cached = URL(fileURLWithPath: node).deletingLastPathComponent().path
                return cached!
            }
            let built = URL(fileURLWithPath: node).deletingLastPathComponent()
            // One directory per build directory, refreshed by each test run (not one per run:
            // a copy of the binaries is large).
            let key = built.path.utf8.reduce(UInt64(5381)) { ($0 &* 33) ^ UInt64($1) }
            let directory = NSTemporaryDirectory().trimmingSuffix("/") + "/nex-e2e-bin-\(String(key, radix: 36))"
            mkdir(directory, 0o755)
            chmod(directory, 0o755)
            for source in [node, built.appendingPathComponent("nex-agent").path, built.appendingPathComponent("nexctl").path] {
                let target = directory + "/" + URL(fileURLWithPath: source).lastPathComponent
                unlink(target)
                // A hard link costs nothing; across file systems, a copy.
                if link(source, target) != 0 { try FileManager.default.copyItem(atPath: source, toPath: target) }
                chmod(target, 0o755)
            }
            try giveSandboxIDs(nexNode: directory + "/nex-node")
            cached = directory
            return directory
        }
    }

    /// What `dist/nex-node.service`'s install step does for the `nex` user: a subordinate uid
    /// and gid range for the node's sandboxes, with `nex-node preflight --init` (as root; its
    /// state directory and config in a temporary directory, so nothing of the host changes but
    /// the id range and the delegated cgroup).
    private static func giveSandboxIDs(nexNode: String) throws {
        let state = try TemporaryDirectory(prefix: "nex-preflight-")
        let output = state.appending("out")
        let child = try ChildProcess(executable: nexNode, arguments: [
            "preflight", "--dev", "--init", "--node-user", "nobody", "--state-dir", state.appending("state"),
            "--config", state.appending("config.json"),
        ], outputPath: output)
        while child.isRunning { usleep(10_000) }
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard text.contains("ok   init: sandbox ids for nobody") else {
            throw NodeProcessError("nex-node preflight --init --node-user nobody did not give sandbox ids", log: text)
        }
    }

    /// The directory the tests' artifacts live under, given to every node as `--allow-file-root`.
    static let artifactRoot: String = {
        let root = NSTemporaryDirectory().trimmingSuffix("/") + "/nex-e2e-artifacts-\(getpid())"
        mkdir(root, 0o755)
        chmod(root, 0o755)
        return root
    }()

    /// A fresh directory for artifacts under ``artifactRoot``, owned by the node's user (so a
    /// workload may write marker files there) and readable by it.
    static func artifactDirectory(prefix: String) throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory(prefix: prefix, in: artifactRoot)
        chmod(directory.path, 0o755)
        if dropsPrivileges { chown(directory.path, uid, gid) }
        return directory
    }

    /// Creates `path` (mode 0700) for the node's user (unless `forNodeUser` is false: a node
    /// run as the tests' own user), and lets that user through the test's own temporary
    /// directories above it.
    static func prepareStateDirectory(_ path: String, forNodeUser: Bool = true) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        guard dropsPrivileges, forNodeUser else { return }
        chown(path, uid, gid)
        let temporary = NSTemporaryDirectory().trimmingSuffix("/")
        var parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        while parent.hasPrefix(temporary + "/") {
            var info = stat()
            if stat(parent, &info) == 0 { chmod(parent, (info.st_mode & 0o7777) | 0o001) }
            parent = URL(fileURLWithPath: parent).deletingLastPathComponent().path
        }
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.count > 1, text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
