import Foundation
import NATSTestSupport
import NexAgentBus
@testable import NexAgentKit
@testable import NexWorkloads
import NexControl
import Testing

/// cgroups where the host lets us make them (root, or delegated cgroups); skipped elsewhere.
@Suite(.enabled(if: CgroupProbe.available, "this host does not let us create cgroups"))
struct WorkloadCgroupTests {
    @Test func theWorkloadRunsInsideItsCgroupWithTheLimitsSet() async throws {
        let name = "test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var reason: String?
        let limits = ResourceLimits(memoryBytes: 256 * 1024 * 1024, processes: 32)
        let cgroup = try #require(WorkloadCgroup.create(name: name, limits: limits, unavailable: &reason), "\(reason ?? "")")
        #expect(!cgroup.applied.isEmpty)
        for directory in cgroup.directories { #expect(FileManager.default.fileExists(atPath: directory)) }

        let directory = try TemporaryDirectory(prefix: "cgroup-")
        let script = try ProcessTestKit.script("cat /proc/self/cgroup", in: directory)
        var workload = NativeRunnerTests.workload(script)
        workload.limits = limits
        workload.cgroup = cgroup
        let (code, lines) = try await NativeRunnerTests.runToEnd(workload)
        #expect(code == 0)
        let own = lines.of(.stdout).filter { $0.contains("nex-\(name)") }
        #expect(own.count == cgroup.directories.count, "\(lines.of(.stdout))")
        // Removed once the workload has exited.
        for directory in cgroup.directories { #expect(!FileManager.default.fileExists(atPath: directory)) }
    }

    @Test func aMemoryLimitAlsoClosesSwap() throws {
        let name = "swap-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var reason: String?
        let limit = 64 * 1024 * 1024
        let cgroup = try #require(WorkloadCgroup.create(name: name, limits: ResourceLimits(memoryBytes: limit), unavailable: &reason),
                                  "\(reason ?? "")")
        defer { cgroup.remove() }
        func read(_ path: String) -> String? {
            (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var checked = 0
        for directory in cgroup.directories {
            if let memsw = read(directory + "/memory.memsw.limit_in_bytes") {
                // v1: memory+swap may not exceed the memory limit, so no swap is left.
                #expect(memsw == read(directory + "/memory.limit_in_bytes") && memsw == String(limit), "\(memsw)")
                checked += 1
            }
            if let swap = read(directory + "/memory.swap.max") {
                #expect(swap == "0")
                checked += 1
            }
        }
        #expect(cgroup.applied.contains("cgroup_swap") == (checked > 0), "\(cgroup.applied)")
    }

    @Test func nothingToLimitMakesNoCgroup() {
        var reason: String?
        #expect(WorkloadCgroup.create(name: "none", limits: ResourceLimits(openFiles: 10), unavailable: &reason) == nil)
        #expect(reason == nil)
    }
}

enum CgroupProbe {
    static let available: Bool = {
        var reason: String?
        let probe = WorkloadCgroup.create(name: "probe-\(getpid())", limits: ResourceLimits(processes: 10), unavailable: &reason)
        probe?.remove()
        return probe != nil
    }()
}
