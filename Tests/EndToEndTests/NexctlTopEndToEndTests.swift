import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing

/// `nexctl top` against a node with workloads: `--once` prints one frame; in a pseudo-terminal
/// it refreshes, sorts on a key and quits on `q`, leaving the terminal as it found it.
@Suite struct NexctlTopEndToEndTests {
    /// Runs nexctl top in a pty (Python's pty module): waits for a frame naming `expect`, sends
    /// `n` (sort by name), waits for the next frame sorted so, then `q`; prints JSON of what it saw.
    static let ptyDriver = #"""
    import json, os, pty, select, sys, time
    argv = sys.argv[1:-1]; expect = sys.argv[-1]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    out = b""; sent_sort = False; sent_quit = False; deadline = time.time() + 30
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
        text = out.decode(errors="replace")
        if not sent_sort and expect in text and "CALLS/S" in text:
            os.write(fd, b"n"); sent_sort = True; mark = len(out)
        elif sent_sort and not sent_quit and b"sort: name" in out[mark:]:
            os.write(fd, b"q"); sent_quit = True
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        status = -1
    print(json.dumps({"output": out.decode(errors="replace"), "status": status, "sorted": sent_sort, "quit": sent_quit}))
    """#

    @Test func topShowsTheFleetOnceAndLiveInATerminal() async throws {
        let config = #"{"workload_types": ["native", "javascript"]}"#
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(tags: ["node_name": "top-node"], config: config)) { node in
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let service = try WorkloadFixture()
                    let running = try await service.deploy(nex, node: node.nodeID, name: "busy")
                    let directory = try NodeUser.artifactDirectory(prefix: "nex-e2e-top-")
                    let echo = try FunctionEndToEndTests.example("echo.js", in: directory)
                    _ = try await nex.deploy(
                        try WorkloadSubmission(name: "echoer", type: "javascript", location: .file(path: echo),
                                               artifactHash: try ArtifactDigest.sha256Hex(ofFile: echo), triggerSubjects: ["top.echo"]),
                        namespace: "default", node: node.nodeID, issuer: try NKeyPair.generate(.account), sender: try XKeyPair.generate())
                    let nexctl = try Executables.nexctl

                    // --once: one frame on stdout, no terminal needed.
                    let once = try await runCommand(nexctl, ["top", "--once", "-s", server.url, "--timeout", "3"], timeout: .seconds(20))
                    #expect(once.status == 0, "\(once.stderr)")
                    #expect(once.stdout.contains("top-node") && once.stdout.contains(String(node.nodeID.prefix(12))), "\(once.stdout)")
                    let row = try #require(once.stdout.split(separator: "\n").first { $0.hasPrefix(running.id) }, "\(once.stdout)")
                    #expect(row.contains("busy") && row.contains("native") && row.contains("running"), "\(row)")
                    #expect(row.contains("iB") || row.contains(" B "), "memory shown: \(row)")
                    let cpu = try #require(row.split(separator: " ", omittingEmptySubsequences: true).dropFirst(6).first)
                    #expect(cpu.hasSuffix("s") && Double(cpu.dropLast()) != nil, "cpu seconds shown: \(row)")
                    #expect(once.stdout.contains("echoer") && once.stdout.contains("RECENT EVENTS"))
                    #expect(!once.stdout.contains("\u{1B}["), "no terminal control codes with --once")

                    // Live, in a pseudo-terminal, while the function is invoked.
                    let invoking = Task {
                        while !Task.isCancelled {
                            _ = try? await nex.connection.request("x", to: "top.echo", timeout: .seconds(2))
                            try? await Task.sleep(for: .milliseconds(50))
                        }
                    }
                    defer { invoking.cancel() }
                    let work = try TemporaryDirectory(prefix: "nexctl-top-")
                    let driver = try work.write(Self.ptyDriver, to: "top_driver.py")
                    let result = try await runCommand(
                        "/usr/bin/env", ["python3", driver, nexctl, "top", "--interval", "0.5", "-s", server.url, "echoer"],
                        timeout: .seconds(60))
                    let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
                                              "\(result.stdout) \(result.stderr)")
                    let output = report["output"] as? String ?? ""
                    #expect(report["sorted"] as? Bool == true && report["quit"] as? Bool == true, "\(output.suffix(2000))")
                    #expect(report["status"] as? Int == 0, "exit status \(String(describing: report["status"])): \(output.suffix(2000))")
                    #expect(output.contains("\u{1B}[2J"), "frames clear the screen")
                    #expect(output.contains("function_exec_succeeded"), "recent events show invocations")
                    // A frame after the first shows a rate for the function: some number of calls per second.
                    let rates = output.split(whereSeparator: \.isNewline).filter { $0.contains("echoer") && $0.contains("javascript") }
                    #expect(rates.contains { line in
                        line.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").last.flatMap { Double($0) }.map { $0 > 0 } ?? false
                    }, "\(rates)")
                    // The service's CPU: seconds in the first frame, a percentage after.
                    #expect(output.split(whereSeparator: \.isNewline)
                        .contains { $0.contains("busy") && ($0.contains("%") || $0.contains("s ")) }, "\(output.suffix(1500))")
                }
            }
        }
    }
}
