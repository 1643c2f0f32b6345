import Foundation
import NATSTestSupport
import NexAgentBus
import NIOCore
import Synchronization
import Testing
@testable import NexAgentKit
import NexWorkloads
import NexControl
import NexAgentBus

/// Helpers shared by the process tests of this target.
enum ProcessTestKit {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Writes an executable `/bin/sh` script into `directory`.
    static func script(_ body: String, in directory: TemporaryDirectory, name: String = "workload.sh") throws -> String {
        try write("#!/bin/sh\n" + body + "\n", to: directory.appending(name), mode: 0o755)
    }

    /// Writes a file through a close-on-exec descriptor, so no child forked meanwhile keeps it
    /// open for writing (which would make exec fail with ETXTBSY).
    @discardableResult
    static func write(_ text: String, to path: String, mode: mode_t) throws -> String {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(description: "open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else { throw Failure(description: "write \(path): \(String(cString: strerror(errno)))") }
        fchmod(fd, mode)
        return path
    }

    /// Waits (up to `limit`) until `pid` is gone.
    static func waitUntilGone(_ pid: Int32, within limit: Duration = .seconds(2)) async throws {
        try await waitFor(timeout: limit, "process \(pid) to end") { !processIsAlive(pid) }
    }
}

/// Output lines collected from a runner.
final class CollectedLines: Sendable {
    private let lines = Mutex<[(WorkloadOutputStream, String)]>([])

    var all: [(WorkloadOutputStream, String)] { lines.withLock { $0 } }
    func of(_ stream: WorkloadOutputStream) -> [String] { all.filter { $0.0 == stream }.map(\.1) }
    var count: Int { lines.withLock { $0.count } }

    @Sendable func add(_ stream: WorkloadOutputStream, _ batch: [ByteBuffer]) async {
        let texts = batch.map { (stream, String(buffer: $0)) }
        lines.withLock { $0.append(contentsOf: texts) }
    }
}

@Suite struct NativeRunnerTests {
    static func workload(_ executable: String, _ arguments: [String] = [], environment: [String: String] = [:],
                         limits: ResourceLimits = ResourceLimits()) -> NativeRunner.Workload {
        NativeRunner.Workload(workloadID: "w-1", namespace: "default", workloadName: "echo", executable: executable,
                              arguments: arguments, environment: environment, limits: limits)
    }

    /// Starts and runs `workload` to its end; returns the exit code and the lines.
    static func runToEnd(_ workload: NativeRunner.Workload, limit: Duration = .seconds(10)) async throws -> (Int32, CollectedLines) {
        let lines = CollectedLines()
        let code = try await withTimeLimit(limit, "workload \(workload.executable)") {
            let runner = try await NativeRunner.start(workload)
            return await runner.run(onLines: lines.add)
        }
        return (code, lines)
    }

    @Test func linesOfEachStreamArriveInOrder() async throws {
        let directory = try TemporaryDirectory(prefix: "runner-")
        let path = try ProcessTestKit.script("""
            i=1
            while [ $i -le 500 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done
            printf 'no newline at end'
            """, in: directory)
        let (code, lines) = try await Self.runToEnd(Self.workload(path))
        #expect(code == 0)
        #expect(lines.of(.stdout) == (1...500).map { "out \($0)" } + ["no newline at end"])
        #expect(lines.of(.stderr) == (1...500).map { "err \($0)" })
    }

    @Test func longLinesAreSplitAtTheLimit() async throws {
        let directory = try TemporaryDirectory(prefix: "runner-")
        let path = try ProcessTestKit.script("head -c 150000 /dev/zero | tr '\\000' a; echo; echo short", in: directory)
        let (code, lines) = try await Self.runToEnd(Self.workload(path))
        #expect(code == 0)
        let sizes = lines.of(.stdout).map(\.utf8.count)
        #expect(sizes == [65536, 65536, 150000 - 2 * 65536, 5])
    }

    @Test func environmentIsExactlyTheGivenOnePlusNexVariables() async throws {
        setenv("NEX_RUNNER_TEST_SECRET", "must-not-leak", 1)
        let (code, lines) = try await Self.runToEnd(Self.workload("/usr/bin/env", environment: ["GREETING": "hello world"]))
        #expect(code == 0)
        let environment = Set(lines.of(.stdout))
        #expect(environment == [
            "GREETING=hello world", "NEX_WORKLOAD_ID=w-1", "NEX_NAMESPACE=default", "NEX_WORKLOAD_NAME=echo",
            "PATH=\(NativeRunner.defaultPath)",
        ])
        #expect(!lines.of(.stdout).contains { $0.contains("must-not-leak") })
    }

    @Test func onlyTheStandardStreamsAreInherited() async throws {
        // This process holds NIO sockets (not close-on-exec) while other tests run.
        let (code, lines) = try await Self.runToEnd(Self.workload("/bin/ls", ["/proc/self/fd"]))
        #expect(code == 0)
        #expect(lines.of(.stdout) == ["0", "1", "2", "3"])  // 3: the directory ls reads
    }

    @Test func givenPathIsKept() async throws {
        let (_, lines) = try await Self.runToEnd(Self.workload("/usr/bin/env", environment: ["PATH": "/opt/bin"]))
        #expect(lines.of(.stdout).contains("PATH=/opt/bin"))
    }

    @Test func exitCodesAndSignalsAreReported() async throws {
        let directory = try TemporaryDirectory(prefix: "runner-")
        let exits = try ProcessTestKit.script("exit 7", in: directory, name: "exits.sh")
        let killed = try ProcessTestKit.script("kill -KILL $$", in: directory, name: "killed.sh")
        #expect(try await Self.runToEnd(Self.workload(exits)).0 == 7)
        #expect(try await Self.runToEnd(Self.workload(killed)).0 == -SIGKILL)
    }

    @Test func argumentsArePassed() async throws {
        let directory = try TemporaryDirectory(prefix: "runner-")
        let path = try ProcessTestKit.script(#"for a in "$@"; do echo "[$a]"; done"#, in: directory)
        let (_, lines) = try await Self.runToEnd(Self.workload(path, ["one", "two words"]))
        #expect(lines.of(.stdout) == ["[one]", "[two words]"])
    }

    @Test func aWorkloadIgnoringSIGTERMIsKilledAfterTheGrace() async throws {
        let directory = try TemporaryDirectory(prefix: "runner-")
        let path = try ProcessTestKit.script("trap '' TERM\necho ready\nwhile :; do sleep 1; done", in: directory)
        let runner = try await NativeRunner.start(Self.workload(path))
        let lines = CollectedLines()
        let run = Task { await runner.run(onLines: lines.add) }
        try await waitFor(timeout: .seconds(5), "ready line") { lines.of(.stdout) == ["ready"] }
        let started = ContinuousClock.now
        let code = try await withTimeLimit(.seconds(5), "stop") { await runner.stop(grace: .milliseconds(300)) }
        let elapsed = ContinuousClock.now - started
        #expect(code == -SIGKILL)
        #expect(elapsed >= .milliseconds(300))  // the upper bound is the 5 s of `within`
        #expect(try await withTimeLimit(.seconds(5), "run") { await run.value } == -SIGKILL)
    }

    @Test func stoppingKillsTheWholeProcessGroup() async throws {
        let directory = try TemporaryDirectory(prefix: "runner-")
        let path = try ProcessTestKit.script("sleep 300 &\necho $!\nwait", in: directory)
        let runner = try await NativeRunner.start(Self.workload(path))
        let lines = CollectedLines()
        let run = Task { await runner.run(onLines: lines.add) }
        let child = try await waitForValue(timeout: .seconds(5), "background pid") { lines.of(.stdout).first.flatMap { Int32($0) } }
        #expect(processIsAlive(child))
        let code = try await withTimeLimit(.seconds(5), "stop") { await runner.stop(grace: .seconds(2)) }
        #expect(code == -SIGTERM)
        try await ProcessTestKit.waitUntilGone(child)
        _ = try await withTimeLimit(.seconds(5), "run") { await run.value }
    }

    @Test func leftoversAreKilledWhenTheWorkloadExits() async throws {
        let directory = try TemporaryDirectory(prefix: "runner-")
        let path = try ProcessTestKit.script("sleep 300 >/dev/null 2>&1 &\necho $!\nexit 0", in: directory)
        let (code, lines) = try await Self.runToEnd(Self.workload(path))
        #expect(code == 0)
        let child = try #require(lines.of(.stdout).first.flatMap { Int32($0) })
        try await ProcessTestKit.waitUntilGone(child)
    }

    @Test func openFilesLimitIsApplied() async throws {
        let directory = try TemporaryDirectory(prefix: "runner-")
        let path = try ProcessTestKit.script("ulimit -n", in: directory)
        let runner = try await NativeRunner.start(Self.workload(path, limits: ResourceLimits(openFiles: 77)))
        #expect(runner.limitsApplied == ["rlimit_nofile"])
        let lines = CollectedLines()
        let code = try await withTimeLimit(.seconds(10), "run") { await runner.run(onLines: lines.add) }
        #expect(code == 0)
        #expect(lines.of(.stdout) == ["77"])
    }

    @Test func artifactErrorsAreNamed() async throws {
        let directory = try TemporaryDirectory(prefix: "runner-")
        let plain = try ProcessTestKit.write("#!/bin/sh\necho hi\n", to: directory.appending("plain.sh"), mode: 0o644)
        let garbage = try ProcessTestKit.write("this is not a program\n", to: directory.appending("garbage"), mode: 0o755)
        let missing = directory.appending("missing")
        func failure(_ path: String) async -> NativeRunnerError? {
            do {
                let runner = try await NativeRunner.start(Self.workload(path))
                _ = await runner.stop(grace: .zero)
                return nil
            } catch {
                return error as? NativeRunnerError
            }
        }
        #expect(await failure(missing) == .artifactMissing(path: missing))
        #expect(await failure(directory.path) == .notRegularFile(path: directory.path))
        #expect(await failure(plain) == .notExecutable(path: plain))
        #expect(await failure(garbage) == .notExecutableFormat(path: garbage))
        #expect(NativeRunnerError.notExecutable(path: plain).description.contains(plain))
        #expect(NativeRunnerError.notExecutableFormat(path: garbage).description.contains("ENOEXEC"))
    }

    /// Volume, not speed: every line of a flood arrives, the last one last. (Lines per second is
    /// a figure of Benchmarks/workload-bench, `log_lines_per_s`.)
    @Test func everyLineOfAFloodOfOutputArrives() async throws {
        let count = 200_000
        let (code, lines) = try await Self.runToEnd(Self.workload("/usr/bin/seq", ["1", String(count)]), limit: .seconds(60))
        #expect(code == 0)
        #expect(lines.count == count)
        #expect(lines.all.last?.1 == String(count))
    }
}
