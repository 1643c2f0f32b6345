import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import NexWorkloads
import Testing

/// Nex 0.2's CLI habits on the real `nexctl`: its flag names (`--trigger_subject`,
/// `--workload_name`, `--workload_id`, `logs --level`) and top-level `events` and `lameduck`.
@Suite struct Nex02HabitsEndToEndTests {
    @Test func nex02FlagNamesAndTopLevelCommands() async throws {
        let config = #"{"workload_types": ["native", "v8"]}"#
        try await withNATSServer(jetStream: true) { server in
            try await withNode(server: server, .init(config: config)) { node in
                let nexctl = try Executables.nexctl
                let home = try TemporaryDirectory(prefix: "nexctl-home-")
                let environment = ChildEnvironment.base().merging(["NEX_HOME": home.appending("nex")]) { $1 }
                let work = try TemporaryDirectory(prefix: "nexctl-02-")

                // `events` at the top level, as `nex events`.
                let eventsPath = work.appending("events")
                let events = try ChildProcess(
                    executable: nexctl, arguments: ["events", "--json", "-s", server.url],
                    environment: environment, outputPath: eventsPath, errorPath: work.appending("events.err"))

                // `--trigger_subject` as `nex devrun` takes it, on a 0.2-style v8 function.
                let artifacts = try NodeUser.artifactDirectory(prefix: "nex-e2e-02-")
                let script = try FunctionEndToEndTests.example("v8-kv-counter.js", in: artifacts)
                let devrun = try await runCommand(
                    nexctl, ["devrun", script, "--type", "v8", "--trigger_subject", "legacy.count", "--name", "legacy",
                             "-s", server.url, "--timeout", "5", "--auction-wait", "0.5"],
                    environment: environment, timeout: .seconds(60))
                #expect(devrun.status == 0, "\(devrun.stderr)")
                let invoke = try await runCommand(nexctl, ["invoke", "legacy.count", "-s", server.url], environment: environment)
                #expect(invoke.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(invoke.stdout) \(invoke.stderr)")

                // `logs --workload_name/--workload_id --level`: a service writing to stdout (info)
                // and stderr (error); only the error lines pass --level error.
                let service = try WorkloadFixture(script: """
                    #!/bin/sh
                    i=0
                    while true; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.1; done
                    """)
                try await withControlClient(server, timeout: .seconds(10)) { nex in
                    let running = try await service.deploy(nex, node: node.nodeID, name: "chatty")
                    let errors = try await runCommand(
                        nexctl, ["logs", "--workload_name", "chatty", "--workload_id", running.id, "--level", "error",
                                 "-s", server.url, "--timeout", "1.5"], environment: environment)
                    #expect(errors.status == 0, "\(errors.stderr)")
                    let lines = errors.stdout.split(separator: "\n")
                    #expect(!lines.isEmpty && lines.allSatisfy { $0.contains("chatty: err ") }, "\(errors.stdout)")
                    let all = try await runCommand(
                        nexctl, ["logs", "--workload_name", "chatty", "--level", "info", "-s", server.url, "--timeout", "1.5"],
                        environment: environment)
                    #expect(all.stdout.contains("chatty: out ") && all.stdout.contains("chatty: err "), "\(all.stdout)")
                    let other = try await runCommand(
                        nexctl, ["logs", "--workload_id", "nosuchid", "-s", server.url, "--timeout", "1"], environment: environment)
                    #expect(other.stdout.isEmpty, "\(other.stdout)")
                    let bad = try await runCommand(nexctl, ["logs", "--level", "loud", "-s", server.url], environment: environment)
                    #expect(bad.status != 0 && bad.stderr.contains("loud"), "\(bad.stderr)")
                }

                // `lameduck` at the top level, as `nex lameduck`; `events` saw it.
                let lameDuck = try await runCommand(nexctl, ["lameduck", node.nodeID, "-s", server.url], environment: environment)
                #expect(lameDuck.status == 0 && lameDuck.stdout.contains("lame duck"), "\(lameDuck.stdout) \(lameDuck.stderr)")
                try await waitFor(timeout: .seconds(10), "events prints node_entered_lameduck") {
                    ((try? String(contentsOfFile: eventsPath, encoding: .utf8)) ?? "").contains("node_entered_lameduck")
                }
                _ = await events.terminate(grace: .seconds(5))
            }
        }
    }
}
