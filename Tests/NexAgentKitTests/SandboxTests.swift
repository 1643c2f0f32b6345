import CProcessSpawn
import Foundation
import NATSTestSupport
import Testing
@testable import NexWorkloads

/// The sandbox of ``ChildProcess``, run as root (as CI does) with its ids written directly.
/// Each test runs a shell inside and asks it what it can see and do.
@Suite(.enabled(if: geteuid() == 0, "the direct id mapping needs root"))
struct SandboxTests {
    static let uid: UInt32 = 165_432

    /// Runs `script` with /bin/sh in a sandbox; returns its exit code and output.
    static func run(_ script: String, binds: [Sandbox.Bind] = [], privateNetwork: Bool = false,
                    workingDirectory: String? = nil) async throws -> (code: Int32, output: String) {
        let directory = try TemporaryDirectory(prefix: "sandbox-")
        let out = directory.appending("out")
        let sandbox = Sandbox(uid: uid, gid: uid, idMapping: .direct, privateNetwork: privateNetwork,
                              binds: Sandbox.systemBinds() + binds, scratch: ["/tmp", "/work"])
        let child = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", script], environment: ["PATH": "/usr/bin:/bin"],
            options: SpawnOptions(stdout: .file(out), stderr: .file(out), workingDirectory: workingDirectory ?? "/work",
                                  sandbox: sandbox))
        let code = try await withTimeLimit(.seconds(10), "sandboxed shell") { try await child.waitForExit() }
        return (code, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    @Test func runsAsItsOwnUserWithoutCapabilitiesOrNewPrivileges() async throws {
        let (code, output) = try await Self.run("""
            id -u; id -g; grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; hostname
            """)
        #expect(code == 0, "\(output)")
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.first == "\(Self.uid)", "\(output)")
        #expect(lines.dropFirst().first == "\(Self.uid)", "\(output)")
        for capability in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
            #expect(lines.contains { $0.hasPrefix(capability + ":") && $0.hasSuffix("0000000000000000") }, "\(capability): \(output)")
        }
        #expect(lines.contains { $0.hasPrefix("NoNewPrivs:") && $0.hasSuffix("1") }, "\(output)")
        #expect(lines.contains { $0.hasPrefix("Seccomp:") && $0.hasSuffix("2") }, "\(output)")
        #expect(lines.last == "nex-sandbox")
    }

    @Test func seesOnlyItsOwnProcesses() async throws {
        let (code, output) = try await Self.run("sleep 30 & ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '; kill $!")
        #expect(code == 0, "\(output)")
        // The shell (pid 1), sleep, ls, grep, sort, tr: nothing of the host.
        let pids = output.split(separator: " ").compactMap { Int($0) }
        #expect(pids.first == 1, "\(output)")
        #expect(pids.count <= 8 && pids.allSatisfy { $0 < 20 }, "\(output)")
        #expect(!pids.contains(Int(getpid())) || getpid() < 20)
    }

    @Test func systemDirectoriesAreReadOnlyAndScratchIsPrivate() async throws {
        let secret = try TemporaryDirectory(prefix: "sandbox-secret-")
        try "node secret".write(toFile: secret.appending("node.xk"), atomically: true, encoding: .utf8)
        let (code, output) = try await Self.run("""
            touch /usr/x 2>/dev/null && echo usr-writable
            touch /etc/x 2>/dev/null && echo etc-writable
            touch /x 2>/dev/null && echo root-writable
            echo data > /tmp/a && echo tmp-ok
            echo data > /work/a && echo work-ok
            cat \(secret.appending("node.xk")) 2>/dev/null && echo secret-read
            ls /etc/nex-node /root /home 2>/dev/null && echo listed
            test -e /etc/shadow && echo shadow-visible
            echo x > /dev/null && echo devnull-ok
            """)
        #expect(code == 0, "\(output)")
        #expect(output.split(separator: "\n").sorted() == ["devnull-ok", "tmp-ok", "work-ok"], "\(output)")
    }

    @Test func aWritableBindIsSharedWithTheHostAndOthersAreNot() async throws {
        let shared = try TemporaryDirectory(prefix: "sandbox-shared-")
        chown(shared.path, Self.uid, Self.uid)
        let (code, output) = try await Self.run("echo from-inside > /shared/file && echo ok; echo x > /tmp/y",
                                                binds: [Sandbox.Bind(source: shared.path, target: "/shared", writable: true)])
        #expect(code == 0, "\(output)")
        #expect(try String(contentsOfFile: shared.appending("file"), encoding: .utf8) == "from-inside\n")
    }

    @Test func refusesMountsPtraceAndNewNamespaces() async throws {
        let (code, output) = try await Self.run("""
            unshare --user true 2>/dev/null && echo unshare-worked
            unshare --user --map-root-user true 2>/dev/null && echo userns-worked
            mount -t tmpfs none /tmp 2>/dev/null && echo mount-worked
            sethost() { hostname evil 2>/dev/null && echo hostname-worked; }; sethost
            echo done
            """)
        #expect(code == 0, "\(output)")
        #expect(output == "done\n", "\(output)")
    }

    /// No terminal to reach (no /dev/tty, a session of its own), /dev read-only, and no
    /// personality that turns address randomisation off.
    @Test func devIsMinimalAndReadOnlyAndPersonalityIsRestricted() async throws {
        let (code, output) = try await Self.run("""
            test -e /dev/tty && echo tty-present
            touch /dev/x 2>/dev/null && echo dev-writable
            ln -sf /tmp /dev/fd 2>/dev/null && echo dev-replaced
            echo ok > /dev/null && echo devnull-ok
            setarch -R true 2>/dev/null && echo norandom-worked
            setarch --uname-2.6 true 2>/dev/null && echo uname26-ok
            ps -o sid= -p $$ 2>/dev/null | tr -d ' ' | sed 's/^/sid=/'
            """)
        #expect(code == 0, "\(output)")
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.filter { !$0.hasPrefix("sid=") } == ["devnull-ok", "uname26-ok"], "\(output)")
        // The shell is pid 1 and leads its own session.
        #expect(lines.contains("sid=1") || !lines.contains { $0.hasPrefix("sid=") }, "\(output)")
    }

    @Test func aPrivateNetworkHasOnlyLoopback() async throws {
        let (code, output) = try await Self.run("ls /sys/class/net 2>/dev/null; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '",
                                                privateNetwork: true)
        #expect(code == 0, "\(output)")
        #expect(output.split(separator: "\n").map(String.init) == ["lo"], "\(output)")
    }

    @Test func aFailedStepIsNamed() throws {
        let missing = "/nonexistent-\(UUID())"
        let sandbox = Sandbox(uid: Self.uid, gid: Self.uid, idMapping: .direct,
                              binds: Sandbox.systemBinds() + [Sandbox.Bind(source: missing, target: "/x")])
        #expect {
            _ = try ChildProcess(executable: "/bin/true", arguments: [], environment: [:],
                                 options: SpawnOptions(sandbox: sandbox))
        } throws: { error in
            guard let error = error as? ChildProcess.SpawnError else { return false }
            return error.step == "bind \(missing)" && error.code == ENOENT
                && error.description == "cannot start /bin/true: bind \(missing): No such file or directory"
        }
    }

    @Test func whenItsFirstProcessEndsEverythingInTheSandboxEnds() async throws {
        let directory = try TemporaryDirectory(prefix: "sandbox-")
        let out = directory.appending("out")
        let sandbox = Sandbox(uid: Self.uid, gid: Self.uid, idMapping: .direct, binds: Sandbox.systemBinds())
        let child = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", "setsid sleep 300 & sleep 300"], environment: ["PATH": "/usr/bin:/bin"],
            options: SpawnOptions(stdout: .file(out), sandbox: sandbox))
        try await Task.sleep(for: .milliseconds(300))
        let sleepers = { () -> [String] in
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { name in
                guard Int32(name) != nil, let status = try? String(contentsOfFile: "/proc/\(name)/status", encoding: .utf8) else { return false }
                return status.contains("Uid:\t\(Self.uid)\t") && status.contains("Name:\tsleep")
            }
        }
        #expect(sleepers().count == 2)
        kill(child.pid, SIGKILL)
        _ = try await withTimeLimit(.seconds(5), "sandbox init") { try await child.waitForExit() }
        try await waitFor(timeout: .seconds(5), "every sandboxed process is gone") { sleepers().isEmpty }
    }
}
