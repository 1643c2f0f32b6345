import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import NexWorkloads
import Testing

/// Tenant B's workload attacks tenant A's and the node, on a real node running as its own
/// user: sandboxed (the default), every attack fails; with `no_sandbox: true` the same probe
/// shows what leaks (docs/isolation.md quotes the difference).
@Suite(.serialized) struct IsolationEndToEndTests {
    /// What tenant B's probe reported: `key=value` pairs of its one report line.
    typealias Report = [String: String]

    /// As the node's own user (newuidmap, a delegated cgroup) and, where the tests run as root,
    /// as root (ids mapped by the node itself).
    @Test(arguments: NodeUser.dropsPrivileges ? [false, true] : [false])
    func aSandboxedTenantReachesNeitherItsNeighbourNorTheNode(nodeAsRoot: Bool) async throws {
        let (report, node) = try await Self.attack(sandboxed: true, nodeAsRoot: nodeAsRoot)
        // Its own user, not the node's, with nothing to escalate with.
        let uid = try #require(report["uid"].flatMap(UInt32.init), "\(report)")
        #expect(uid != NodeUser.uid && uid != 0, "\(report)")
        #expect(report["caps"] == "0000000000000000", "\(report)")
        #expect(report["no_new_privs"] == "1", "\(report)")
        #expect(report["seccomp"] == "2", "\(report)")
        // Tenant A's environment, processes and agent directory are out of sight.
        #expect(report["foreign_secret"] == "none", "\(report)")
        #expect(report["processes"].flatMap(Int.init).map { $0 <= 3 } == true, "only itself and its agent: \(report)")
        #expect(report["agent_dirs"] == "1", "only its own agent's directory: \(report)")
        // The node is neither visible nor signalable; its keys are not there to read.
        #expect(report["node_visible"] == "no", "\(report)")
        #expect(report["signal_node"] == "ESRCH", "\(report)")
        #expect(report["node_seed"] == "ENOENT", "\(report)")
        // The system is read-only; mount, ptrace and new namespaces are refused.
        #expect(report["usr_write"] == "EROFS", "\(report)")
        #expect(report["mount"] == "EPERM", "\(report)")
        #expect(report["ptrace_agent"] == "EPERM", "\(report)")
        #expect(report["unshare_user"] == "EPERM", "\(report)")
        // There is no agent bus to dial: the node listens for none (its agents get socket pairs).
        #expect(report["bus"] == "unreachable", "\(report)")
        // And the node says it sandboxes.
        #expect(node.sandboxed == true && node.tags?["nex.unsafe"] == nil, "\(node)")
    }

    @Test func withoutTheSandboxTheSameProbeSeesWhatLeaks() async throws {
        let (report, node) = try await Self.attack(sandboxed: false)
        #expect(report["uid"] == "\(NodeUser.uid)" || !NodeUser.dropsPrivileges, "the node's own user: \(report)")
        #expect(report["foreign_secret"] == "found", "A's environment is readable: \(report)")
        #expect(report["node_visible"] == "yes", "\(report)")
        #expect(report["signal_node"] == "ok", "the node can be signalled: \(report)")
        #expect(report["node_seed"] == "ok", "the node's key is readable: \(report)")
        #expect(report["agent_dirs"].flatMap(Int.init).map { $0 >= 2 } == true, "every agent's directory is listed: \(report)")
        #expect(report["seccomp"] == "0", "\(report)")
        #expect(report["bus"] == "refused", "the bus listens on loopback; an agent's key is needed: \(report)")
        #expect(node.sandboxed == false && node.tags?["nex.unsafe"] == "true", "\(node)")
    }

    /// A node that cannot sandbox (here: its user has no subordinate id range) does not start,
    /// and says what is missing and how to fix it; with `no_sandbox: true` it starts.
    @Test(.enabled(if: NodeUser.dropsPrivileges, "needs root to start a node as a user without a subordinate range"))
    func aNodeThatCannotSandboxRefusesToStartNamingWhatIsMissing() async throws {
        try await withNATSServer(jetStream: true) { server in
            let directory = try TemporaryDirectory(prefix: "nex-e2e-nosubid-")
            let state = directory.appending("state")
            try NodeUser.prepareStateDirectory(state)
            let stranger: uid_t = 4242  // no passwd entry, so no /etc/subuid entry either
            chown(state, stranger, stranger)
            let node = try NodeUser.nexNode
            chmod(directory.path, 0o755)
            func start(_ config: String) throws -> (process: ChildProcess, stderr: String) {
                let file = try directory.write(config, to: "node-\(UUID().uuidString).json")
                chmod(file, 0o644)
                let stderr = directory.appending("stderr-\(UUID().uuidString)")
                let process = try ChildProcess(executable: "/usr/bin/setpriv", arguments: [
                    "--reuid=\(stranger)", "--regid=\(stranger)", "--clear-groups", "--inh-caps=-all", "--",
                    node, "up", "-s", server.url, "--state-dir", state, "--config", file,
                ], environment: ChildEnvironment.base(), errorPath: stderr)
                return (process, stderr)
            }
            func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
            let refused = try start("{}")
            let status = try await withTimeLimit(.seconds(10), "the refused node to exit") { try await refused.process.waitForExit() }
            let refusal = text(refused.stderr)
            #expect(status != 0)
            #expect(refusal.contains("this host cannot sandbox workloads"), "\(refusal)")
            #expect(refusal.contains("a subordinate id range for user 4242"), "\(refusal)")
            #expect(refusal.contains("nex-node preflight --init --node-user 4242"), "\(refusal)")
            // Unsandboxed it starts, saying what that costs.
            let unsandboxed = try start(#"{"no_sandbox": true}"#)
            defer { unsandboxed.process.stop(grace: .seconds(2)) }
            try await waitFor(timeout: .seconds(10), "the unsandboxed node to start: \(text(unsandboxed.stderr))") {
                text(unsandboxed.stderr).contains("agent bus ready")
            }
            #expect(text(unsandboxed.stderr).contains("no_sandbox: workloads run unsandboxed"))
            #expect(unsandboxed.process.isRunning)
        }
    }

    /// `network: none`: only a loopback of its own; the NATS server the host-network neighbour
    /// reaches is out of reach. A node without the sandbox refuses it.
    @Test func aWorkloadWithoutANetworkReachesNothing() async throws {
        try await withNATSServer(jetStream: true) { server in
            let port = try #require(server.url.firstMatch(of: #/:(\d+)$/#).map { String($0.1) }, "\(server.url)")
            let script = """
                #!/bin/sh
                echo "interfaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ',')"
                python3 -c 'import socket,sys
                try:
                    socket.create_connection(("127.0.0.1", \(port)), 2); print("nats=reachable")
                except OSError as e:
                    print("nats=unreachable")
                sys.stdout.flush()'
                sleep 30
                """
            try await withNode(server: server) { node in
                try await withControlClient(server) { nex in
                    let logs = try await LogRecorder.start(nex)
                    let fixture = try WorkloadFixture(script: script)
                    let isolated = try await fixture.deploy(nex, node: node.nodeID, name: "isolated", network: WorkloadNetwork.none)
                    let host = try await fixture.deploy(nex, node: node.nodeID, name: "hosted")
                    try await waitFor(timeout: .seconds(10), "both probes report: \(logs.texts)") {
                        logs.all.filter { $0.text.hasPrefix("nats=") }.count == 2
                    }
                    let lines = { (id: String) in logs.all.filter { $0.id == id }.map(\.text) }
                    #expect(lines(isolated.id).contains("interfaces=lo,"), "\(lines(isolated.id))")
                    #expect(lines(isolated.id).contains("nats=unreachable"), "\(lines(isolated.id))")
                    #expect(lines(host.id).contains("nats=reachable"), "\(lines(host.id))")
                    let info = try await nex.info(namespace: "default", node: node.nodeID)
                    #expect(info.machines.first { $0.id == isolated.id }?.limitsApplied?.contains("network_none") == true)
                }
            }
            try await withNode(server: server, .init(config: #"{"no_sandbox": true}"#)) { node in
                try await withControlClient(server) { nex in
                    await #expect {
                        _ = try await WorkloadFixture(script: script).deploy(nex, node: node.nodeID, name: "refused",
                                                                            network: WorkloadNetwork.none)
                    } throws: { error in
                        "\(error)".contains("network none needs a sandbox")
                    }
                }
            }
        }
    }

    /// Starts a node (sandboxed or not), deploys tenant A's probe with a secret, then tenant
    /// B's, and returns B's report and the node's ping.
    static func attack(sandboxed: Bool, nodeAsRoot: Bool = false) async throws -> (Report, PingResponse) {
        let artifacts = try NodeUser.artifactDirectory(prefix: "nex-e2e-probe-")
        let probe = try Probe.build(in: artifacts)
        return try await withNATSServer(jetStream: true) { server in
            var launch = NodeProcess.Launch(config: sandboxed ? nil : #"{"no_sandbox": true}"#)
            launch.asTestUser = nodeAsRoot
            return try await withNode(server: server, launch) { node in
                try await withControlClient(server) { nex in
                    // A sandboxed node does not listen: its agents get socket pairs.
                    let busPort = node.log.firstMatch(of: #/agent bus ready[^\n]*url=nats://127\.0\.0\.1:(\d+)/#)?.1 ?? "0"
                    #expect((busPort == "0") == sandboxed, "\(node.log)")
                    let environment = ["PROBE_NODE_PID": String(node.pid), "PROBE_STATE_DIR": node.stateDirectory,
                                       "PROBE_BUS_PORT": String(busPort)]
                    let fixture = try WorkloadFixture(executable: probe, in: artifacts)
                    let secretA = "tenant-a-secret-\(UUID().uuidString)"
                    let logsA = try await LogRecorder.start(nex, namespace: "tenant-a")
                    _ = try await fixture.deploy(nex, node: node.nodeID, name: "probe-a",
                                                 environment: environment.merging(["PROBE_SECRET": secretA]) { $1 },
                                                 namespace: "tenant-a")
                    try await logsA.waitFor("probe-report")
                    let logsB = try await LogRecorder.start(nex, namespace: "tenant-b")
                    _ = try await fixture.deploy(nex, node: node.nodeID, name: "probe-b",
                                                 environment: environment.merging(["PROBE_SECRET": "tenant-b"]) { $1 },
                                                 namespace: "tenant-b")
                    let line = try await logsB.waitFor("probe-report").text
                    var report = Report()
                    for pair in line.split(separator: " ").dropFirst() {
                        let parts = pair.split(separator: "=", maxSplits: 1)
                        if parts.count == 2 { report[String(parts[0])] = String(parts[1]) }
                    }
                    // The probe may only look for A's secret: it must not have been given it.
                    #expect(!line.contains(secretA))
                    return (report, try await nex.ping(node: node.nodeID))
                }
            }
        }
    }
}

/// The probe: a small C program built for the test, run as a native workload. It prints one
/// line, `probe-report key=value ...`, then sleeps (so a neighbour can probe it).
enum Probe {
    /// Builds `source` (the isolation probe by default) with gcc into `directory/name`.
    static func build(in directory: TemporaryDirectory, source text: String = Probe.source, name: String = "probe") throws -> String {
        let source = try directory.write(text, to: name + ".c")
        let output = directory.appending(name)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/gcc")
        process.arguments = ["-O1", "-o", output, source]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ProbeBuildError() }
        chmod(output, 0o755)
        return output
    }

    struct ProbeBuildError: Error, CustomStringConvertible {
        var description: String { "gcc could not build the isolation probe" }
    }

    static let source = #"""
        #define _GNU_SOURCE
        #include <arpa/inet.h>
        #include <dirent.h>
        #include <errno.h>
        #include <fcntl.h>
        #include <sched.h>
        #include <signal.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/mount.h>
        #include <sys/ptrace.h>
        #include <sys/socket.h>
        #include <unistd.h>

        static const char *name(int error) {
            switch (error) {
            case 0: return "ok"; case EPERM: return "EPERM"; case EACCES: return "EACCES"; case ENOENT: return "ENOENT";
            case ESRCH: return "ESRCH"; case EROFS: return "EROFS"; case EINVAL: return "EINVAL"; case ENOSYS: return "ENOSYS";
            default: return "other";
            }
        }

        static void status_field(const char *field, char *out, size_t size) {
            FILE *file = fopen("/proc/self/status", "r");
            char line[256];
            snprintf(out, size, "?");
            while (file && fgets(line, sizeof line, file)) {
                if (strncmp(line, field, strlen(field)) == 0) {
                    char *value = line + strlen(field);
                    while (*value == ' ' || *value == '\t') value++;
                    value[strcspn(value, "\n")] = 0;
                    snprintf(out, size, "%s", value);
                }
            }
            if (file) fclose(file);
        }

        int main(void) {
            const char *own = getenv("PROBE_SECRET");
            const char *state = getenv("PROBE_STATE_DIR");
            pid_t node = (pid_t)atoi(getenv("PROBE_NODE_PID") ? getenv("PROBE_NODE_PID") : "0");
            char caps[64], nnp[8], seccomp[8];
            status_field("CapEff:", caps, sizeof caps);
            status_field("NoNewPrivs:", nnp, sizeof nnp);
            status_field("Seccomp:", seccomp, sizeof seccomp);

            // Other processes: a foreign PROBE_SECRET in any environ, nex-node by name.
            int processes = 0, foreign = 0, node_visible = 0;
            DIR *proc = opendir("/proc");
            struct dirent *entry;
            while (proc && (entry = readdir(proc))) {
                if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
                processes++;
                char path[64], buffer[65536];
                snprintf(path, sizeof path, "/proc/%s/comm", entry->d_name);
                int fd = open(path, O_RDONLY);
                if (fd >= 0) {
                    ssize_t got = read(fd, buffer, sizeof buffer - 1);
                    close(fd);
                    if (got > 0) { buffer[got] = 0; if (strncmp(buffer, "nex-node", 8) == 0) node_visible = 1; }
                }
                snprintf(path, sizeof path, "/proc/%s/environ", entry->d_name);
                fd = open(path, O_RDONLY);
                if (fd < 0) continue;
                ssize_t got = read(fd, buffer, sizeof buffer - 1);
                close(fd);
                for (ssize_t at = 0; got > 0 && at < got; at += strlen(buffer + at) + 1) {
                    buffer[got] = 0;
                    if (strncmp(buffer + at, "PROBE_SECRET=", 13) == 0 && own && strcmp(buffer + at + 13, own) != 0) foreign = 1;
                }
            }
            if (proc) closedir(proc);

            int signal_node = node > 0 ? (kill(node, 0) == 0 ? 0 : errno) : EINVAL;
            char path[4096];
            snprintf(path, sizeof path, "%s/node.nk", state ? state : "/nonexistent");
            int fd = open(path, O_RDONLY);
            int node_seed = fd >= 0 ? 0 : errno;
            if (fd >= 0) close(fd);
            snprintf(path, sizeof path, "%s/agents", state ? state : "/nonexistent");
            int agent_dirs = 0;
            DIR *agents = opendir(path);
            while (agents && (entry = readdir(agents))) if (entry->d_name[0] != '.') agent_dirs++;
            if (agents) closedir(agents);

            fd = open("/usr/probe-was-here", O_WRONLY | O_CREAT, 0644);
            int usr_write = fd >= 0 ? 0 : errno;
            if (fd >= 0) { close(fd); unlink("/usr/probe-was-here"); }
            int mount_result = mount("none", "/tmp", "tmpfs", 0, NULL) == 0 ? 0 : errno;
            pid_t agent = getppid() > 1 ? getppid() : 1;
            int ptrace_agent = ptrace(PTRACE_ATTACH, agent, 0, 0) == 0 ? 0 : errno;
            if (ptrace_agent == 0) ptrace(PTRACE_DETACH, agent, 0, 0);
            int unshare_user = unshare(CLONE_NEWUSER) == 0 ? 0 : errno;

            // The agent bus without an agent's key: INFO, then CONNECT and PING.
            const char *bus = "refused";
            int port = getenv("PROBE_BUS_PORT") ? atoi(getenv("PROBE_BUS_PORT")) : 0;
            int sock = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
            inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
            if (port > 0 && connect(sock, (struct sockaddr *)&address, sizeof address) == 0) {
                char reply[4096];
                ssize_t got = read(sock, reply, sizeof reply - 1);
                const char *hello = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n";
                if (got > 0 && write(sock, hello, strlen(hello)) > 0) {
                    got = read(sock, reply, sizeof reply - 1);
                    if (got > 0) { reply[got] = 0; if (strstr(reply, "PONG")) bus = "accepted"; }
                }
            } else {
                bus = "unreachable";
            }
            close(sock);

            printf("probe-report uid=%d caps=%s no_new_privs=%s seccomp=%s foreign_secret=%s processes=%d "
                   "node_visible=%s signal_node=%s node_seed=%s agent_dirs=%d usr_write=%s mount=%s "
                   "ptrace_agent=%s unshare_user=%s bus=%s\n",
                   (int)getuid(), caps, nnp, seccomp, foreign ? "found" : "none", processes,
                   node_visible ? "yes" : "no", name(signal_node), name(node_seed), agent_dirs, name(usr_write),
                   name(mount_result), name(ptrace_agent), name(unshare_user), bus);
            fflush(stdout);
            for (;;) pause();
        }
        """#
}
