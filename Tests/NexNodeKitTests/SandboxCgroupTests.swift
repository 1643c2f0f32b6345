import Foundation
import NATSTestSupport
import NexControl
import Testing
@testable import NexNodeKit

/// The sandbox cgroup's file layout on cgroup v1 and v2, on a directory tree made to look
/// like each (this host's kernel runs one of them; the end-to-end tests prove enforcement).
@Suite struct SandboxCgroupTests {
    /// A fake cgroup root: v2 with `controllers` delegated, or v1 hierarchies.
    static func fakeRoot(v2: Bool, controllers: String = "cpuset cpu io memory pids") throws -> (TemporaryDirectory, [String: String]) {
        let root = try TemporaryDirectory(prefix: "cgroup-")
        if v2 {
            try FileManager.default.createDirectory(atPath: root.appending("node.service"), withIntermediateDirectories: true)
            try "\(controllers)\n".write(toFile: root.appending("cgroup.controllers"), atomically: true, encoding: .utf8)
            try "\(controllers)\n".write(toFile: root.appending("node.service/cgroup.controllers"), atomically: true, encoding: .utf8)
            try "".write(toFile: root.appending("node.service/cgroup.subtree_control"), atomically: true, encoding: .utf8)
            return (root, ["": "/node.service"])
        }
        for controller in ["memory", "pids", "cpu"] {
            try FileManager.default.createDirectory(atPath: root.appending("\(controller)/node"), withIntermediateDirectories: true)
        }
        return (root, ["memory": "/node", "pids": "/node", "cpu": "/node"])
    }

    /// Makes the files the kernel would put in a new cgroup directory.
    static func populate(_ directory: String, _ files: [String: String]) throws {
        for (name, value) in files { try value.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8) }
    }

    @Test func v2EnablesControllersAndWritesMaxFilesAboveTheAgentsUse() throws {
        let (root, own) = try Self.fakeRoot(v2: true)
        let found = SandboxCgroup.Hierarchies.find(root: root.path, own: own)
        let hierarchies = try #require(found.hierarchies, "\(found.problem ?? "")")
        #expect(hierarchies.version == .v2)
        let cgroup = try SandboxCgroup.create(name: "agent1", in: hierarchies)
        let directory = root.appending("node.service/nex-agent1")
        #expect(cgroup.procsFiles == [directory + "/cgroup.procs"])
        #expect(try String(contentsOfFile: root.appending("node.service/cgroup.subtree_control"), encoding: .utf8) == "+memory +pids +cpu")
        try Self.populate(directory, ["memory.current": "10485760\n", "memory.max": "max\n", "memory.swap.max": "max\n",
                                      "pids.current": "7\n", "pids.max": "max\n", "cpu.max": "max 100000\n"])
        let applied = try cgroup.apply(ResourceLimits(memoryBytes: 64 << 20, processes: 16, cpuMillicores: 250))
        #expect(applied == ["cgroup_memory", "cgroup_swap", "cgroup_pids", "cgroup_cpu"])
        #expect(SandboxCgroup.read(directory + "/memory.max") == String((64 << 20) + 10_485_760), "the agent's 10 MiB on top")
        #expect(SandboxCgroup.read(directory + "/memory.swap.max") == "0")
        #expect(SandboxCgroup.read(directory + "/pids.max") == "23")
        #expect(SandboxCgroup.read(directory + "/cpu.max") == "25000 100000")
    }

    @Test func v1WritesEachHierarchy() throws {
        let (root, own) = try Self.fakeRoot(v2: false)
        let hierarchies = try #require(SandboxCgroup.Hierarchies.find(root: root.path, own: own).hierarchies)
        #expect(hierarchies.version == .v1)
        let cgroup = try SandboxCgroup.create(name: "agent2", in: hierarchies)
        #expect(cgroup.procsFiles.count == 3)
        let memory = root.appending("memory/node/nex-agent2"), pids = root.appending("pids/node/nex-agent2"),
            cpu = root.appending("cpu/node/nex-agent2")
        try Self.populate(memory, ["memory.usage_in_bytes": "0", "memory.limit_in_bytes": "", "memory.memsw.limit_in_bytes": "",
                                   "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"])
        try Self.populate(pids, ["pids.current": "3", "pids.max": "max"])
        try Self.populate(cpu, ["cpu.cfs_period_us": "", "cpu.cfs_quota_us": ""])
        let applied = try cgroup.apply(ResourceLimits(memoryBytes: 1000, processes: 5, cpuMillicores: 2000))
        #expect(applied == ["cgroup_memory", "cgroup_swap", "cgroup_pids", "cgroup_cpu"])
        #expect(SandboxCgroup.read(memory + "/memory.limit_in_bytes") == "1000")
        #expect(SandboxCgroup.read(memory + "/memory.memsw.limit_in_bytes") == "1000", "swap closed")
        #expect(SandboxCgroup.read(pids + "/pids.max") == "8")
        #expect(SandboxCgroup.read(cpu + "/cpu.cfs_quota_us") == "200000", "two cores")
        #expect(cgroup.outOfMemoryKills == 2)
        // Limits not asked for are not written.
        try Self.populate(pids, ["pids.max": "max"])
        #expect(try cgroup.apply(ResourceLimits(memoryBytes: 1000)) == ["cgroup_memory", "cgroup_swap"])
        #expect(SandboxCgroup.read(pids + "/pids.max") == "max")
    }

    @Test func missingOrUnwritableHierarchiesAreNamed() throws {
        let (root, own) = try Self.fakeRoot(v2: true, controllers: "cpu io")
        let found = SandboxCgroup.Hierarchies.find(root: root.path, own: own)
        #expect(found.hierarchies == nil)
        #expect(found.problem?.contains("memory, pids are not delegated") == true, "\(found.problem ?? "")")
        let (v1, _) = try Self.fakeRoot(v2: false)
        let partial = SandboxCgroup.Hierarchies.find(root: v1.path, own: ["memory": "/node"])
        #expect(partial.hierarchies == nil && partial.problem?.contains("no pids hierarchy") == true, "\(partial.problem ?? "")")
    }

    @Test func aLimitThatCannotBeWrittenIsAnErrorNamingTheFile() throws {
        let (root, own) = try Self.fakeRoot(v2: false)
        let hierarchies = try #require(SandboxCgroup.Hierarchies.find(root: root.path, own: own).hierarchies)
        let cgroup = try SandboxCgroup.create(name: "agent3", in: hierarchies)
        // No pids.max file in a real cgroup means the write fails: it must not pass silently.
        #expect {
            _ = try cgroup.apply(ResourceLimits(processes: 4))
        } throws: { error in
            "\(error)".contains("pids/node/nex-agent3/pids.max")
        }
    }
}
