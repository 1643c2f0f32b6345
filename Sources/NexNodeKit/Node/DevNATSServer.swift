import NexWorkloads
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// `nex-node up --dev`: a private `nats-server` child on a free loopback port, JetStream on,
/// its store in the node's state directory. Stopped when the node stops.
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
        let port = try LoopbackPort.free()
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
        // Dies with the node, even when the node is killed (parent-death signal).
        process = try ChildProcess(
            executable: binary, arguments: ["-c", configPath, "-a", "127.0.0.1", "-p", String(port)],
            environment: ProcessInfo.processInfo.environment,
            options: SpawnOptions(parentDeathSignal: SIGKILL, stdout: .file(logPath), stderr: .file(logPath)))
        url = "nats://127.0.0.1:\(port)"
        workloadURL = "nats://workload:\(workloadPassword)@127.0.0.1:\(port)"
        urlPath = directory + "/url"
        workloadURLPath = directory + "/workload-url"
        let deadline = ContinuousClock.now + .seconds(10)
        while !LoopbackPort.isAccepting(port) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                stop()
                throw NodeIdentityError("the dev nats-server did not start; see \(logPath)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
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
}

/// Loopback port helpers.
enum LoopbackPort {
    /// A port the kernel reports free on 127.0.0.1 right now.
    static func free() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw NodeIdentityError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Bool in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else { throw NodeIdentityError("cannot find a free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func isAccepting(_ port: Int, host: String = "127.0.0.1") -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
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
