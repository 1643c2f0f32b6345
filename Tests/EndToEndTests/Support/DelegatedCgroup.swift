import Foundation
import NexWorkloads

/// A cgroup handed to an end-to-end node the way `Delegate=yes` hands one to the unit: a
/// directory per cgroup v1 hierarchy (`memory`, `pids`, `cpu`) owned by ``NodeUser``, which
/// the node is started in. The node makes its sandboxes' cgroups below it.
///
/// Only when the tests run as root on a v1 host (CI): elsewhere nodes get none, and fall back
/// to rlimits as an undelegated node does.
struct DelegatedCgroup: Sendable {
    let directories: [String]

    static let controllers = ["memory", "pids", "cpu"]

    static func make() -> DelegatedCgroup? {
        guard NodeUser.dropsPrivileges,
              !FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") else { return nil }
        let own = WorkloadCgroup.ownCgroups()
        let name = "nex-e2e-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var directories: [String] = []
        for controller in controllers {
            guard let path = own[controller] else { return nil }
            let directory = "/sys/fs/cgroup/\(controller)\(path == "/" ? "" : path)/\(name)"
            guard mkdir(directory, 0o755) == 0 else {
                DelegatedCgroup(directories: directories).remove()
                return nil
            }
            directories.append(directory)
            for entry in ["", "/cgroup.procs", "/tasks"] { chown(directory + entry, NodeUser.uid, NodeUser.gid) }
        }
        return DelegatedCgroup(directories: directories)
    }

    /// `command` started inside the cgroup: a shell writes its pid to each `cgroup.procs`, then
    /// becomes the command.
    func wrap(_ command: (executable: String, arguments: [String])) -> (executable: String, arguments: [String]) {
        let join = directories.map { "echo $$ > '\($0)/cgroup.procs'" }.joined(separator: " && ")
        return ("/bin/sh", ["-c", "\(join) && exec \"$@\"", "sh", command.executable] + command.arguments)
    }

    /// Whether a process is still in the cgroup or in one of the node's below it.
    var hasProcesses: Bool {
        directories.contains { directory in
            let children = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("nex-") }
            return ([directory] + children.map { directory + "/" + $0 }).contains {
                !((try? String(contentsOfFile: $0 + "/cgroup.procs", encoding: .utf8)) ?? "").isEmpty
            }
        }
    }

    /// Removes what is left (the node's sandbox cgroups first): only once its processes are gone.
    func remove() {
        for directory in directories {
            let children = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for child in children where child.hasPrefix("nex-") { rmdir(directory + "/" + child) }
            rmdir(directory)
        }
    }
}
