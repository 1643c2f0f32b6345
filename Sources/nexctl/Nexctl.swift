import ArgumentParser
import Foundation
import NATSWire
import NexControl
import NexCLISupport
import NIOCore

@main
struct Nexctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nexctl",
        abstract: "Drives Nex nodes over the $NEX control API.",
        version: "0.1.0",
        subcommands: [Node.self, Workload.self, Run.self, DevRun.self, Stop.self, Logs.self, Invoke.self, Monitor.self, Keys.self, Top.self,
                      // Nex 0.2's top-level commands.
                      Monitor.Events.self, Node.LameDuck.self]
    )

    /// Global options may stand before the subcommand, as with the `nats` CLI
    /// (`nexctl -s URL node ls`): they are moved after it before parsing.
    static func main() async {
        await mainMovingConnectionOptions(alsoTakingValues: ["--timeout", "--namespace"])
    }

    /// Runs a command body, turning any failure into one clear line on stderr and exit code 1.
    static func perform(_ body: () async throws -> Void) async throws {
        do {
            try await NexctlTracing.run(body)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            FileHandle.standardError.write(Data("nexctl: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// Connection options, named as the `nats` CLI names them.
struct GlobalOptions: ParsableArguments {
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Seconds to wait for answers (default: $NATS_TIMEOUT, seconds or a duration such as 5s; else 2).")
    var timeout: Double = GlobalOptions.environmentTimeout ?? 2
    @Option(help: "Workload namespace.")
    var namespace: String = "default"

    func connect() async throws -> NexClient {
        var options = try connection.settings.clientOptions()
        options.name = "nexctl"
        options.allowReconnect = false
        options.connectTimeout = wait
        let client = try NATSClient(options: options)
        try await client.connect()
        return NexClient(connection: client, timeout: wait)
    }

    var wait: Duration { .milliseconds(Int64(timeout * 1000)) }

    /// `$NATS_TIMEOUT` in seconds: a number, or a Go duration as the `nats` CLI writes it.
    static var environmentTimeout: Double? {
        guard let text = ProcessInfo.processInfo.environment["NATS_TIMEOUT"], !text.isEmpty else { return nil }
        if let seconds = Double(text), seconds > 0 { return seconds }
        return GoDuration.parse(text).map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
    }

}

struct Node: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Nodes: list, inspect, probe for workloads, put in lame duck mode.",
        subcommands: [List.self, Info.self, Probe.self, LameDuck.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the nodes that answer a ping.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print JSON.") var json = false
        @Option(help: "Only nodes with this tag, KEY=VALUE (values compare case-insensitively); repeatable.")
        var filter: [String] = []

        func run() async throws {
            try await Nexctl.perform {
                var wanted: [String: String] = [:]
                for pair in filter {
                    let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--filter \(pair): KEY=VALUE") }
                    wanted[String(parts[0])] = String(parts[1])
                }
                let nex = try await global.connect()
                let nodes = try await nex.pingAll(window: global.wait)
                    .filter { node in wanted.allSatisfy { node.tags?[$0.key]?.lowercased() == $0.value.lowercased() } }
                    .sorted { $0.nodeID < $1.nodeID }
                await nex.connection.close()
                if json { return try printJSON(nodes) }
                var rows = [["ID", "NAME", "NEXUS", "VERSION", "UPTIME", "WORKLOADS", "SANDBOXED", "LAME DUCK"]]
                for node in nodes {
                    rows.append([node.nodeID, node.tags?["node_name"] ?? "", node.nexus ?? "", node.version, node.uptime,
                                 String(node.runningMachines), node.sandboxed.map { $0 ? "yes" : "no" } ?? "",
                                 node.tags?["nex.lameduck"] == "true" ? "yes" : "no"])
                }
                printTable(rows)
                if nodes.isEmpty {
                    print(wanted.isEmpty ? "no nodes answered within \(global.timeout) s"
                                         : "no node with \(filter.joined(separator: ", ")) answered within \(global.timeout) s")
                }
            }
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one node's details.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The node id (N...).") var node: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await Nexctl.perform {
                let nex = try await global.connect()
                let info = try await nex.info(namespace: global.namespace, node: node)
                await nex.connection.close()
                if json { return try printJSON(info) }
                print("Node:        \(node)")
                print("Version:     \(info.version)")
                print("Uptime:      \(info.uptime)")
                print("XKey:        \(info.publicXKey)")
                print("Types:       \((info.supportedWorkloadTypes ?? []).joined(separator: ", "))")
                if let memory = info.memory {
                    print("Memory:      \(memory.total / 1024) MiB total, \(memory.available / 1024) MiB available")
                }
                print("Tags:")
                for (key, value) in (info.tags ?? [:]).sorted(by: { $0.key < $1.key }) { print("  \(key) = \(value)") }
                print("Workloads:   \(info.machines.count)")
                for machine in info.machines {
                    let unverified = machine.workload.unverified == true ? "  UNVERIFIED artifact (allow_unverified_hash)" : ""
                    print("  \(machine.id)  \(machine.workload.name)  \(machine.workload.type)  up \(machine.uptime)\(unverified)")
                }
            }
        }
    }

    struct LameDuck: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lameduck", abstract: "Put a node in lame duck mode: it takes no new workloads.",
            discussion: """
                With --delay, its reschedulable services move to other nodes of its nexus at once, and \
                the node exits once it runs nothing, or when the delay is up.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The node id (N...).") var node: String
        @Option(help: "Exit after this long, a Go duration (30s, 1m30s).") var delay: String?

        func run() async throws {
            try await Nexctl.perform {
                let delay = try delay.map { text in
                    guard let value = GoDuration.parse(text) else { throw ValidationError("--delay \(text): a duration such as 30s or 1m30s") }
                    return value
                }
                let nex = try await global.connect()
                let response = try await nex.lameDuck(node: node, delay: delay)
                await nex.connection.close()
                let detail = response.message.map { ": \($0)" } ?? ""
                print(response.success ? "node \(response.nodeID) is in lame duck mode\(detail)" : "node \(response.nodeID) refused\(detail)")
                if !response.success { throw ExitCode.failure }
            }
        }
    }
}

struct Monitor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Watch what nodes publish.", subcommands: [Events.self])

    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print events as they arrive (Ctrl-C to stop).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Event type, or * for all.") var type: String = "*"
        @Flag(help: "Print each event as JSON on one line.") var json = false

        func run() async throws {
            try await Nexctl.perform {
                let nex = try await global.connect()
                // Events of the namespace, plus the node's own (`system`), as Nex 0.2 does.
                let namespaces = global.namespace == NexSubject.systemNamespace || global.namespace == "*" ? [global.namespace] : [global.namespace, NexSubject.systemNamespace]
                let json = self.json
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for namespace in namespaces {
                        let events = try await nex.events(namespace: namespace, type: type == "*" ? nil : NexEventType(type))
                        group.addTask {
                            for await event in events {
                                let line: String
                                if json {
                                    line = String(decoding: try JSONEncoder().encode(event), as: UTF8.self)
                                } else {
                                    let data = (try? JSONEncoder().encode(event.data)).map { String(decoding: $0, as: UTF8.self) } ?? ""
                                    line = "\(event.time) \(event.type) from \(event.source): \(data)"
                                }
                                // Unbuffered, so a pipe sees each event as it arrives.
                                FileHandle.standardOutput.write(Data((line + "\n").utf8))
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }
    }
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

func printTable(_ rows: [[String]]) {
    guard let header = rows.first else { return }
    let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
    }
}
