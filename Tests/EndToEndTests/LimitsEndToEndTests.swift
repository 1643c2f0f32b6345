import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// Limits the kernel enforces on a sandboxed workload, through the cgroup the node makes for
/// its sandbox under the cgroup delegated to it (``DelegatedCgroup``): a memory hog is killed
/// at its limit, a fork bomb stops at its process limit, a CPU spinner gets its share and no
/// more; each beside a quiet neighbour that goes on, on a node that goes on serving.
@Suite(.serialized, .enabled(if: NodeUser.dropsPrivileges && !FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers"),
                             "a delegated cgroup v1 for the node needs the tests to run as root on a v1 host"))
struct LimitsEndToEndTests {
    @Test func aMemoryHogIsKilledAtItsLimit() async throws {
        try await Self.withLimitedWorkload(mode: "hog", limits: ResourceLimits(memoryBytes: 64 << 20)) { nex, node, run, logs, events in
            let ended = try await waitForValue(timeout: .seconds(20), "the hog's end: \(events.summary)") {
                events.all.first { $0.type == "workload_undeployed" && $0.source.hasSuffix(run.id) }
            }
            #expect("\(ended.data)".contains("signal 9"), "killed by the kernel: \(ended.data)")
            let allocated = logs.texts.compactMap { $0.firstMatch(of: /allocated (\d+) MB/).flatMap { Int($0.1) } }
            #expect(!allocated.isEmpty && allocated.max()! <= 64, "stopped at 64 MiB: \(allocated)")
            #expect(!logs.texts.contains("allocated all"))
        }
    }

    @Test func aForkBombStopsAtItsProcessLimit() async throws {
        try await Self.withLimitedWorkload(mode: "forks", limits: ResourceLimits(processes: 16)) { nex, node, run, logs, _ in
            let line = try await logs.waitFor("forks=").text
            let forks = try #require(line.firstMatch(of: /forks=(\d+) error=(\w+)/), "\(line)")
            #expect(Int(forks.1)! <= 16 && forks.2 == "EAGAIN", "\(line)")
            let info = try await nex.info(namespace: "default", node: node.nodeID)
            let applied = info.machines.first { $0.id == run.id }?.limitsApplied ?? []
            #expect(applied.contains("cgroup_pids"), "\(applied)")
        }
    }

    @Test func aCPUSpinnerGetsItsShareAndNoMore() async throws {
        try await Self.withLimitedWorkload(mode: "spin", limits: ResourceLimits(cpuMillicores: 200)) { nex, node, run, logs, _ in
            let line = try await logs.waitFor("spin ", timeout: .seconds(20)).text
            let figures = try #require(line.firstMatch(of: /cpu_ms=(\d+) wall_ms=(\d+)/), "\(line)")
            let share = Double(figures.1)! / Double(figures.2)!
            #expect(share <= 0.3, "a fifth of a core, not more: \(line)")
            #expect(share >= 0.05, "it does run: \(line)")
            let info = try await nex.info(namespace: "default", node: node.nodeID)
            #expect(info.machines.first { $0.id == run.id }?.limitsApplied?.contains("cgroup_cpu") == true)
        }
    }

    /// Deploys a quiet neighbour, then the limits probe in `mode` with `limits`; runs `body`,
    /// then checks the neighbour still ticks and the node still deploys.
    static func withLimitedWorkload(
        mode: String, limits: ResourceLimits,
        _ body: (NexClient, NodeProcess, RunResponse, LogRecorder, EventRecorder) async throws -> Void
    ) async throws {
        let artifacts = try NodeUser.artifactDirectory(prefix: "nex-e2e-limits-")
        let probe = try Probe.build(in: artifacts, source: Self.source, name: "limits-probe")
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: #"{"machine_pool_size": 2}"#)) { node in
                #expect(node.cgroup != nil)
                try await withControlClient(server) { nex in
                    let events = try await EventRecorder.start(nex, namespace: "default")
                    let neighbourLogs = try await LogRecorder.start(nex, workloadName: "neighbour")
                    let neighbour = try WorkloadFixture()
                    _ = try await neighbour.deploy(nex, node: node.nodeID, name: "neighbour")
                    try await neighbourLogs.waitFor("tick 1")

                    let logs = try await LogRecorder.start(nex, workloadName: "limited")
                    let fixture = try WorkloadFixture(executable: probe, in: artifacts)
                    let run = try await fixture.deploy(nex, node: node.nodeID, name: "limited",
                                                       environment: ["PROBE_MODE": mode], limits: limits)
                    try await body(nex, node, run, logs, events)

                    let ticks = neighbourLogs.texts.filter { $0.hasPrefix("tick ") }.count
                    try await waitFor(timeout: .seconds(5), "the neighbour goes on") {
                        neighbourLogs.texts.filter { $0.hasPrefix("tick ") }.count > ticks + 2
                    }
                    let again = try await neighbour.deploy(nex, node: node.nodeID, name: "after")
                    #expect(again.started)
                }
            }
        }
    }

    static let source = #"""
        #define _GNU_SOURCE
        #include <errno.h>
        #include <signal.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/resource.h>
        #include <time.h>
        #include <unistd.h>

        static long ms(struct timeval t) { return t.tv_sec * 1000L + t.tv_usec / 1000; }

        int main(void) {
            const char *mode = getenv("PROBE_MODE") ? getenv("PROBE_MODE") : "";
            setvbuf(stdout, NULL, _IOLBF, 0);
            if (strcmp(mode, "hog") == 0) {
                for (size_t mb = 1; mb <= 1024; mb++) {
                    char *block = malloc(1 << 20);
                    if (!block) { printf("malloc failed at %zu MB\n", mb); break; }
                    memset(block, (int)mb, 1 << 20);
                    if (mb % 4 == 0) printf("allocated %zu MB\n", mb);
                }
                printf("allocated all\n");
            } else if (strcmp(mode, "forks") == 0) {
                int forks = 0;
                const char *error = "none";
                for (int i = 0; i < 500; i++) {
                    pid_t child = fork();
                    if (child == 0) { pause(); _exit(0); }
                    if (child < 0) { error = errno == EAGAIN ? "EAGAIN" : "other"; break; }
                    forks++;
                }
                printf("forks=%d error=%s\n", forks, error);
            } else if (strcmp(mode, "spin") == 0) {
                struct timespec start, now;
                clock_gettime(CLOCK_MONOTONIC, &start);
                volatile unsigned long counter = 0;
                long wall;
                do {
                    for (int i = 0; i < 100000; i++) counter++;
                    clock_gettime(CLOCK_MONOTONIC, &now);
                    wall = (now.tv_sec - start.tv_sec) * 1000L + (now.tv_nsec - start.tv_nsec) / 1000000L;
                } while (wall < 3000);
                struct rusage usage;
                getrusage(RUSAGE_SELF, &usage);
                printf("spin cpu_ms=%ld wall_ms=%ld\n", ms(usage.ru_utime) + ms(usage.ru_stime), wall);
            }
            for (;;) pause();
        }
        """#
}
