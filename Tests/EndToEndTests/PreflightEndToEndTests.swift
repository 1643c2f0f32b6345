import Foundation
import NATSTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `nex-node preflight`: `--check` reports what the host offers without changing anything;
/// `--init` (as root) makes the node's user, state directory, config, id range and delegated
/// cgroup, and a second run changes nothing.
@Suite(.serialized) struct PreflightEndToEndTests {
    @Test func checkReportsAndChangesNothing() async throws {
        try await withNATSServer { server in
            let directory = try TemporaryDirectory(prefix: "nex-e2e-preflight-")
            let state = directory.appending("not-made")
            let result = try await runCommand(try Executables.nexNode,
                                              ["preflight", "--check", "-s", server.url, "--state-dir", state], timeout: .seconds(30))
            #expect(result.stdout.contains("ok   control NATS: \(server.url)") && result.stdout.contains("(nats-server "), "\(result.stdout)")
            for name in ["nex-agent", "JavaScriptCore", "user namespaces", "seccomp", "cgroups"] {
                #expect(result.stdout.contains(": ") && result.stdout.contains(" \(name): "), "\(name) missing in \(result.stdout)")
            }
            #expect(result.stdout.contains("FAIL state directory: \(state) does not exist"), "\(result.stdout)")
            #expect(result.stdout.contains("preflight --init"))
            #expect(result.status != 0, "a failed check fails the command")
            #expect(!FileManager.default.fileExists(atPath: state), "--check made the state directory")

            // A state directory others may read is reported, with the fix.
            let open = directory.appending("open")
            try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true)
            chmod(open, 0o755)
            let loose = try await runCommand(try Executables.nexNode,
                                             ["preflight", "-s", server.url, "--state-dir", open], timeout: .seconds(30))
            #expect(loose.stdout.contains("group or others may read") && loose.stdout.contains("chmod 700 \(open)"), "\(loose.stdout)")
        }
    }

    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/useradd"), "needs root and useradd"))
    func initMakesWhatTheNodeNeedsOnceAndKeepsWhatExists() async throws {
        let user = "nexinit\(Int.random(in: 10_000...99_999))"
        let directory = try TemporaryDirectory(prefix: "nex-e2e-init-")
        let state = directory.appending("state"), config = directory.appending("etc/config.json")
        let cgroupExisted = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/nex-node")
        defer {
            _ = try? Process.run(URL(fileURLWithPath: "/usr/sbin/userdel"), arguments: [user]).waitUntilExit()
            for file in ["/etc/subuid", "/etc/subgid"] {
                if let text = try? String(contentsOfFile: file, encoding: .utf8) {
                    let kept = text.split(separator: "\n").filter { !$0.hasPrefix("\(user):") }.joined(separator: "\n")
                    try? (kept.isEmpty ? "" : kept + "\n").write(toFile: file, atomically: true, encoding: .utf8)
                }
            }
            if !cgroupExisted { for controller in ["memory", "pids", "cpu"] { rmdir("/sys/fs/cgroup/\(controller)/nex-node") } }
        }
        let arguments = ["preflight", "--init", "--node-user", user, "--state-dir", state, "--config", config, "-s", "nats://127.0.0.1:1"]
        let first = try await runCommand(try Executables.nexNode, arguments, timeout: .seconds(30))
        #expect(first.stdout.contains("ok   init: created system user \(user)"), "\(first.stdout) \(first.stderr)")
        #expect(first.stdout.contains("ok   init: created state directory \(state), owner \(user), mode 0700"), "\(first.stdout)")
        #expect(first.stdout.contains("ok   init: wrote default config \(config)"), "\(first.stdout)")
        #expect(first.stdout.contains("ok   init: sandbox ids for \(user)"), "\(first.stdout)")
        #expect(first.stdout.contains("ok   init: delegated cgroup"), "\(first.stdout)")
        // Then the checks run with what was made (the control server is unreachable on purpose).
        #expect(first.stdout.contains("ok   state directory: \(state): owner \(user), mode 700"), "\(first.stdout)")

        var info = stat()
        #expect(stat(state, &info) == 0 && info.st_mode & 0o777 == 0o700)
        let account = try #require(getpwnam(user))
        #expect(info.st_uid == account.pointee.pw_uid)
        let subuid = try String(contentsOfFile: "/etc/subuid", encoding: .utf8)
        #expect(subuid.contains("\(user):"))
        // The config it wrote starts a node (parsed by the node itself: a bad one is refused).
        let written = try String(contentsOfFile: config, encoding: .utf8)
        #expect(written.contains("\"state_dir\": \"\(state)\""))

        // A second run keeps everything, including an edited config.
        try "{\"tags\": {\"edited\": \"yes\"}}".write(toFile: config, atomically: true, encoding: .utf8)
        let second = try await runCommand(try Executables.nexNode, arguments, timeout: .seconds(30))
        #expect(second.stdout.contains("ok   init: user \(user) exists") && second.stdout.contains("kept config \(config)")
                && second.stdout.contains("kept state directory"), "\(second.stdout)")
        #expect(try String(contentsOfFile: config, encoding: .utf8).contains("edited"))
        #expect(try String(contentsOfFile: "/etc/subuid", encoding: .utf8).components(separatedBy: "\(user):").count == 2,
                "one range, not two")
    }

    @Test func initNeedsRootAndRefusesCheckWithIt() async throws {
        let both = try await runCommand(try Executables.nexNode, ["preflight", "--init", "--check"], timeout: .seconds(10))
        #expect(both.status != 0 && both.stderr.contains("choose one"), "\(both.stderr)")
    }
}
