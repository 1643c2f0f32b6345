import CProcessSpawn
import Foundation
import NATSTestSupport
import NexAgentBus
import Synchronization
import Testing
@testable import NexAgentKit
@testable import NexWorkloads
import NexControl

@Suite struct ChildProcessTests {
    @Test func writesItsStreamsToFilesAndReportsTheExitCode() async throws {
        let directory = try TemporaryDirectory(prefix: "child-")
        let out = directory.appending("out"), err = directory.appending("err")
        let child = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", "echo to-out; echo to-err >&2; exit 3"], environment: [:],
            options: SpawnOptions(stdout: .file(out), stderr: .file(err)))
        let code = try await withTimeLimit(.seconds(5), "child") { try await child.waitForExit() }
        #expect(code == 3)
        #expect(child.exitStatus == 3)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "to-out\n")
        #expect(try String(contentsOfFile: err, encoding: .utf8) == "to-err\n")
        var info = stat()
        stat(out, &info)
        #expect(info.st_mode & 0o777 == 0o600)
    }

    /// Two passed descriptors arrive as 3 and 4, in order; nothing else of the parent's is
    /// inherited.
    @Test func passedDescriptorsArriveAsThreeAndFour() async throws {
        let directory = try TemporaryDirectory(prefix: "child-")
        let first = open(directory.appending("first"), O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        let second = open(directory.appending("second"), O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        defer { close(first); close(second) }
        let out = directory.appending("out")
        let child = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", "echo one >&3; echo two >&4; ls /proc/self/fd"], environment: [:],
            options: { var options = SpawnOptions(stdout: .file(out)); options.passedDescriptors = [second, first]; return options }())
        #expect(try await withTimeLimit(.seconds(5), "child") { try await child.waitForExit() } == 0)
        #expect(try String(contentsOfFile: directory.appending("second"), encoding: .utf8) == "one\n")
        #expect(try String(contentsOfFile: directory.appending("first"), encoding: .utf8) == "two\n")
        // 0-2, 3, 4 and the descriptor ls opens to list them.
        let listed = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
        #expect(listed.filter { $0 > 4 }.count <= 1, "\(listed)")
    }

    /// A descriptor sent over a socket channel arrives usable; with nothing queued a short wait
    /// times out, and a message without a descriptor is refused.
    @Test func aSocketChannelCarriesOneDescriptorPerMessage() throws {
        var ends: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        defer { close(pipeEnds[0]); close(pipeEnds[1]) }
        #expect(nex_send_descriptor(ends[0], pipeEnds[1]) == 0)
        var received: Int32 = -1
        #expect(nex_receive_descriptor(ends[1], 1000, &received) == 0)
        defer { close(received) }
        #expect(write(received, "x", 1) == 1)
        var byte: UInt8 = 0
        #expect(read(pipeEnds[0], &byte, 1) == 1 && byte == UInt8(ascii: "x"))
        // Nothing queued: a short wait times out.
        var none: Int32 = -1
        #expect(nex_receive_descriptor(ends[1], 10, &none) == ETIMEDOUT)
        // A plain message without a descriptor is a protocol error.
        #expect(send(ends[0], "y", 1, 0) == 1)
        #expect(nex_receive_descriptor(ends[1], 1000, &none) == EPROTO)
    }

    @Test func execFailureNamesTheStepAndThePath() throws {
        let directory = try TemporaryDirectory(prefix: "child-")
        let path = try ProcessTestKit.write("#!/bin/sh\n", to: directory.appending("not-executable"), mode: 0o644)
        chmod(path, 0o644)
        #expect {
            _ = try ChildProcess(executable: path, arguments: [], environment: [:], options: SpawnOptions())
        } throws: { error in
            guard let error = error as? ChildProcess.SpawnError else { return false }
            return error.step == "exec" && error.code == EACCES
                && error.description == "cannot start \(path): exec: Permission denied"
        }
    }

    @Test func failedLimitSetupIsReported() throws {
        // An open-files limit above the hard limit of an unprivileged process, or absurd for root.
        #expect {
            _ = try ChildProcess(executable: "/bin/true", arguments: [], environment: [:],
                                 options: SpawnOptions(limits: ResourceLimits(openFiles: Int(Int32.max) * 4)))
        } throws: { error in
            (error as? ChildProcess.SpawnError)?.step == "setrlimit"
        }
    }

    @Test func terminateSignalsTheGroupAndEscalates() async throws {
        let directory = try TemporaryDirectory(prefix: "child-")
        let out = directory.appending("out")
        let child = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", "trap '' TERM; sleep 300 & echo $!; wait"], environment: [:],
            options: SpawnOptions(newProcessGroup: true, stdout: .file(out)))
        #expect(child.processGroup == child.pid)
        let background = try await waitForValue(timeout: .seconds(5), "background pid") {
            (try? String(contentsOfFile: out, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        let code = try await withTimeLimit(.seconds(5), "terminate") { await child.terminate(grace: .milliseconds(200)) }
        #expect(code == -SIGKILL)
        try await ProcessTestKit.waitUntilGone(background)
    }

    @Test func stopSignalsTheWholeGroup() async throws {
        let directory = try TemporaryDirectory(prefix: "child-")
        let out = directory.appending("out")
        let child = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", "sleep 300 & echo $!; wait"], environment: [:],
            options: SpawnOptions(newProcessGroup: true, stdout: .file(out)))
        let background = try await waitForValue(timeout: .seconds(5), "background pid") {
            (try? String(contentsOfFile: out, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        child.stop(grace: .seconds(2))
        #expect(child.exitStatus == -SIGTERM)
        try await ProcessTestKit.waitUntilGone(background)
    }

    /// PR_SET_PDEATHSIG fires when the forking thread ends: a child started with a
    /// parent-death signal from a thread that then exits must survive.
    @Test func parentDeathSignalSurvivesTheCallingThread() async throws {
        let child = Mutex<ChildProcess?>(nil)
        ShortLivedThread.run {
            child.withLock {
                $0 = try? ChildProcess(executable: "/bin/sleep", arguments: ["30"], environment: [:],
                                       options: SpawnOptions(newProcessGroup: true, parentDeathSignal: SIGKILL))
            }
        }
        let process = try #require(child.withLock { $0 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(process.isRunning, "the child died with the thread that asked for it")

        // Control: forked directly from a short-lived thread, the signal does fire.
        let direct = Mutex<pid_t>(0)
        ShortLivedThread.run {
            var options = nex_spawn_options()
            options.parent_death_signal = SIGKILL
            options.stdin_fd = -1; options.stdout_fd = -1; options.stderr_fd = -1
            options.limit_address_space = -1; options.limit_open_files = -1; options.limit_processes = -1
            let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("30"), nil]
            let envp: [UnsafeMutablePointer<CChar>?] = [nil]
            var pid: pid_t = 0
            if nex_spawn("/bin/sleep", argv, envp, &options, &pid, nil, nil) == 0 { direct.withLock { $0 = pid } }
            argv.forEach { free($0) }
        }
        let pid = direct.withLock { $0 }
        #expect(pid > 0)
        try await waitFor(timeout: .seconds(2), "directly forked child to die") {
            var status: Int32 = 0
            return waitpid(pid, &status, WNOHANG) == pid
        }
        await process.terminate(grace: .zero)
    }
}

/// Runs a closure on a new thread and waits until that thread has ended.
enum ShortLivedThread {
    final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }

    static func run(_ body: @escaping () -> Void) {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(&thread, nil, { argument in
            Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
            return nil
        }, box)
        pthread_join(thread, nil)
    }
}
