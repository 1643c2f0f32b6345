import NexWorkloads
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// `nex-node up --dev`: a private `nats-server` child on a loopback port it picks itself (and
/// reports in its ports file), JetStream on, its store in the node's state directory. Stopped
/// when the node stops.
///
/// It shows the separation of the control and workload planes with two accounts:
/// - `CONTROL`: the node's control connection and `nexctl`. A client that brings no
///   credentials lands here (`no_auth_user`), so ``url`` needs none; written to
///   `<state-dir>/dev-nats/url` so `nexctl -s "$(cat ...)"` can reach it.
/// - `WORKLOAD`: host services (the node sets `host_services.nats_url` to it when the
///   configuration names none) and the services one deploys; ``workloadURL`` carries the
///   user and its random password, written to `<state-dir>/dev-nats/workload-url` (mode 0600).
///
/// The accounts share nothing: a function's host services see only the workload account's
/// subjects and JetStream, never `$NEX` or the control account's buckets.
public final class DevNATSServer: Sendable {
    /// The control account's URL (no credentials needed).
    public let url: String
    /// The workload account's URL, with its user and password.
    public let workloadURL: String
    public let logPath: String
    /// The file holding ``url``.
    public let urlPath: String
    /// The file holding ``workloadURL``.
    public let workloadURLPath: String
    private let process: ChildProcess

    /// The binary: `$NATS_SERVER_BIN`, else `/usr/sbin/nats-server`, else `nats-server` on `PATH`.
    public static var binaryPath: String? {
        if let path = ProcessInfo.processInfo.environment["NATS_SERVER_BIN"], !path.isEmpty { return path }
        if FileManager.default.isExecutableFile(atPath: "/usr/sbin/nats-server") { return "/usr/sbin/nats-server" }
        return ExecutableLookup.find("nats-server")
    }

    /// Starts the server and waits (up to 10 s) until it accepts connections.
    public init(stateDirectory: String) async throws {
        guard let binary = Self.binaryPath else {
            throw NodeIdentityError("--dev needs nats-server: install it (apt-get install nats-server) or set NATS_SERVER_BIN")
        }
        let directory = stateDirectory + "/dev-nats"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        logPath = directory + "/server.log"
        let controlPassword = RandomID.make(length: 24), workloadPassword = RandomID.make(length: 24)
        let configPath = directory + "/server.conf"
        let config = """
            # Written by nex-node up --dev: the control and the workload plane in two accounts.
            jetstream { store_dir: "\(directory)/jetstream" }
            accounts {
              CONTROL: { jetstream: enabled, users: [ { user: "control", password: "\(controlPassword)" } ] }
              WORKLOAD: { jetstream: enabled, users: [ { user: "workload", password: "\(workloadPassword)" } ] }
            }
            no_auth_user: "control"

            """
        guard FileManager.default.createFile(atPath: configPath, contents: Data(config.utf8), attributes: [.posixPermissions: 0o600])
        else {
            throw NodeIdentityError("cannot write \(configPath)")
        }
        // The server binds a port of its choosing (`-p -1`) and names it in its ports file once
        // it listens: no port is probed free and then bound by another process.
        let portsDirectory = directory + "/ports"
        try? FileManager.default.removeItem(atPath: portsDirectory)
        try FileManager.default.createDirectory(atPath: portsDirectory, withIntermediateDirectories: true)
        // Dies with the node, even when the node is killed (parent-death signal).
        let process = try ChildProcess(
            executable: binary,
            arguments: ["-c", configPath, "-a", "127.0.0.1", "-p", "-1", "--ports_file_dir", portsDirectory],
            environment: ProcessInfo.processInfo.environment,
            options: SpawnOptions(parentDeathSignal: SIGKILL, stdout: .file(logPath), stderr: .file(logPath)))
        self.process = process
        urlPath = directory + "/url"
        workloadURLPath = directory + "/workload-url"
        let deadline = ContinuousClock.now + .seconds(10)
        var port: Int?
        while port == nil {
            port = Self.clientPort(inPortsFileOf: process.pid, directory: portsDirectory)
            guard port == nil else { break }
            guard process.isRunning, ContinuousClock.now < deadline else {
                process.stop()
                throw NodeIdentityError("the dev nats-server did not start; see \(logPath)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        url = "nats://127.0.0.1:\(port!)"
        workloadURL = "nats://workload:\(workloadPassword)@127.0.0.1:\(port!)"
        // The workload URL first: whoever waits for `url` finds both.
        guard FileManager.default.createFile(
            atPath: workloadURLPath, contents: Data((workloadURL + "\n").utf8), attributes: [.posixPermissions: 0o600])
        else {
            throw NodeIdentityError("cannot write \(workloadURLPath)")
        }
        guard FileManager.default.createFile(atPath: urlPath, contents: Data((url + "\n").utf8)) else {
            throw NodeIdentityError("cannot write \(urlPath)")
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s).
    public func stop() {
        try? FileManager.default.removeItem(atPath: urlPath)
        try? FileManager.default.removeItem(atPath: workloadURLPath)
        process.stop()
    }

    deinit { stop() }

    /// The client port nats-server `pid` wrote to `<directory>/<name>_<pid>.ports`
    /// (`{"nats":["nats://127.0.0.1:4222"],...}`); nil until the file is there and complete.
    private static func clientPort(inPortsFileOf pid: pid_t, directory: String) -> Int? {
        struct PortsFile: Decodable { var nats: [String]? }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        guard let name = names.first(where: { $0.hasSuffix("_\(pid).ports") }),
              let data = FileManager.default.contents(atPath: directory + "/" + name),
              let file = try? JSONDecoder().decode(PortsFile.self, from: data),
              let url = file.nats?.first, let colon = url.lastIndex(of: ":")
        else { return nil }
        return Int(url[url.index(after: colon)...])
    }
}

/// Finds executables on `PATH`.
public enum ExecutableLookup {
    public static func find(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        for directory in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
