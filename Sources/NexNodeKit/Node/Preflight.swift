import NexWorkloads
import FoundationEssentials
import NATSWire
import NexControl

/// `nex-node preflight`: what the node needs, each check with a fix when it fails.
public enum Preflight {
    public struct Check: Sendable {
        public var name: String
        public var passed: Bool
        public var detail: String
        /// What to do when it failed.
        public var fix: String?
    }

    public static func run(control: ControlConnectionSettings, stateDirectory: String, dev: Bool,
                           agentPath: String? = nil) async -> [Check] {
        var checks: [Check] = []
        do {
            try StateDirectory.prepare(stateDirectory)
            checks.append(Check(name: "state directory", passed: true, detail: "\(stateDirectory) is writable"))
        } catch {
            checks.append(Check(name: "state directory", passed: false, detail: "\(error)",
                                fix: "create it writable by the node's user, or pass --state-dir DIR"))
        }
        if dev {
            if let binary = DevNATSServer.binaryPath {
                checks.append(Check(name: "nats-server for --dev", passed: true, detail: binary))
            } else {
                checks.append(Check(name: "nats-server for --dev", passed: false, detail: "not found",
                                    fix: "apt-get install nats-server, or set NATS_SERVER_BIN"))
            }
        } else {
            checks.append(await controlCheck(control))
        }
        if let agent = AgentExecutable.locate(configured: agentPath) {
            checks.append(Check(name: "nex-agent", passed: true, detail: agent))
        } else {
            checks.append(Check(name: "nex-agent", passed: false, detail: "not found beside nex-node or on PATH",
                                fix: agentPath.map { "agent_path is \($0): make it an executable nex-agent" }
                                    ?? "install nex-agent next to nex-node (swift build puts them together)"))
        }
        return checks
    }

    private static func controlCheck(_ control: ControlConnectionSettings) async -> Check {
        do {
            var options = try control.clientOptions()
            options.allowReconnect = false
            options.connectTimeout = .seconds(3)
            let client = try NATSClient(options: options)
            try await client.connect()
            let detail = "\(client.connectedServer ?? "") (nats-server \(client.serverInfo?.version ?? "?"))"
            await client.close()
            return Check(name: "control NATS", passed: true, detail: detail)
        } catch {
            return Check(name: "control NATS", passed: false, detail: "\(error)",
                         fix: "start a nats-server, pass -s URL and credentials, or run with --dev")
        }
    }
}
