import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Error raised when a nats-server cannot be started, probed or stopped.
public struct NATSServerError: Error, CustomStringConvertible {
    public let message: String
    /// Last lines the server wrote to its log (stdout + stderr), if any.
    public let logTail: String

    public init(_ message: String, logTail: String = "") {
        self.message = message
        self.logTail = logTail
    }

    public var description: String {
        if logTail.isEmpty { return message }
        return "\(message)\n--- nats-server output (tail) ---\n\(logTail)\n--- end ---"
    }
}

/// A real `nats-server` process started for a test.
///
/// The server chooses its own loopback port (`-p -1`) and reports it in a ports file
/// (`--ports_file_dir`), which `start` reads: no port is probed free and then handed over,
/// so no other process can take it in between. Every instance has JetStream enabled by
/// default with a private store directory, and writes its output to `logPath` inside a
/// temporary directory that is removed when the instance is deallocated. `deinit` stops
/// the process; ``withNATSServer(config:jetStream:monitoring:arguments:_:)`` scopes one to a
/// closure and stops it when the closure ends.
///
///     try await withNATSServer { server in
///         // connect a client to server.url ...
///         try await server.restart()   // same port, same JetStream store
///     }
public final class NATSServer: Sendable {
    /// Loopback address the server is bound to.
    public let host: String = "127.0.0.1"
    /// TCP port for clients, chosen by the server at its first launch and kept across restarts.
    public var port: Int { state.withLock { $0.ports.client } }
    /// HTTP monitoring port, when the server was started with `monitoring: true`.
    public var monitoringPort: Int? { state.withLock { $0.ports.monitoring } }
    /// Route (cluster) port, when the config has a `cluster { listen: "127.0.0.1:-1" }` block.
    public var clusterPort: Int? { state.withLock { $0.ports.cluster } }
    /// True when the server was started with `-js`.
    public let jetStream: Bool
    /// Executable that was launched.
    public let executablePath: String
    /// Temporary directory holding the log, the config and the store.
    public let directory: TemporaryDirectory
    /// File receiving the server's stdout and stderr (appended across restarts).
    public let logPath: String
    /// JetStream store directory (passed with `-sd` when `jetStream` is true).
    public let storeDirectory: String
    /// Path of the config file passed with `-c`, when a config was given.
    public let configPath: String?
    /// The argument vector (without argv[0]) of the most recent launch: `-p -1` (and `-m -1`)
    /// at the first, the ports the server chose at every later one.
    public var arguments: [String] { launchArguments(ports: state.withLock { $0.ports }) }
    /// Directory nats-server writes its `<executable>_<pid>.ports` file to.
    public let portsFileDirectory: String
    /// Whether the server serves HTTP monitoring (`-m`).
    public let monitoring: Bool
    /// Command line arguments given to `start`, appended after ours.
    private let extraArguments: [String]
    /// How long `start` / `restart` wait for the server to accept clients.
    public let startupTimeout: Duration

    private struct State {
        /// Zero (unknown) until the first launch has read the ports file.
        var ports = NATSServerPorts()
        var pid: pid_t?
        var infoLine: String?
        var version: String?
        var launches: Int = 0
    }

    private let state = Mutex(State())

    // MARK: - Public API

    /// `nats://127.0.0.1:PORT`
    public var url: String { "nats://\(host):\(port)" }

    /// The version reported in the most recent INFO line (e.g. "2.10.22").
    public var version: String? { state.withLock { $0.version } }

    /// The most recent INFO line received while probing, without `\r\n`.
    public var infoLine: String? { state.withLock { $0.infoLine } }

    /// Process id of the running server, or nil when stopped.
    public var pid: Int32? { state.withLock { $0.pid.map { Int32($0) } } }

    /// True while the server process is believed to be running.
    public var isRunning: Bool { pid != nil }

    /// Path of the nats-server binary: `$NATS_SERVER_BIN` when set, else
    /// `/usr/sbin/nats-server`, else the first `nats-server` on `$PATH`.
    public static var binaryPath: String {
        let env = ProcessInfo.processInfo.environment
        if let fromEnv = env["NATS_SERVER_BIN"], !fromEnv.isEmpty {
            return fromEnv
        }
        let standard = "/usr/sbin/nats-server"
        if access(standard, X_OK) == 0 { return standard }
        for dir in (env["PATH"] ?? "").split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/nats-server"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return standard
    }

    /// Starts a nats-server on a loopback port of its own choosing and waits until it
    /// accepts clients (it has written its ports file, and a TCP client gets `INFO`).
    ///
    /// - Parameters:
    ///   - config: optional config file text, passed with `-c`. The listen
    ///     address and port are always given on the command line and win.
    ///   - jetStream: pass `-js` (with a private `-sd` store directory).
    ///   - monitoring: serve HTTP monitoring on a port the server chooses (`-m -1`),
    ///     see ``monitoringPort``.
    ///   - arguments: extra command line arguments appended at the end.
    ///   - startupTimeout: how long to wait for readiness.
    public static func start(
        config: String? = nil,
        jetStream: Bool = true,
        monitoring: Bool = false,
        arguments extraArguments: [String] = [],
        startupTimeout: Duration = .seconds(10)
    ) async throws -> NATSServer {
        let directory = try TemporaryDirectory(prefix: "nats-server-")
        let server = NATSServer(
            jetStream: jetStream,
            monitoring: monitoring,
            executablePath: binaryPath,
            directory: directory,
            storeDirectory: try directory.makeSubdirectory("jetstream"),
            portsFileDirectory: try directory.makeSubdirectory("ports"),
            configPath: try config.map { try directory.write($0, to: "server.conf") },
            extraArguments: extraArguments,
            startupTimeout: startupTimeout
        )
        do {
            try await server.launchAndWait()
        } catch LaunchError.addressInUse(let underlying) {
            throw underlying
        } catch LaunchError.failed(let underlying) {
            throw underlying
        }
        return server
    }

    /// Stops the server: SIGTERM, wait for exit, SIGKILL after 5 seconds.
    /// Does nothing when it is not running. Blocks until the process is gone.
    public func stop() {
        let pid: pid_t? = state.withLock { state in
            let pid = state.pid
            state.pid = nil
            return pid
        }
        guard let pid else { return }
        Self.terminate(pid: pid, grace: .seconds(5))
    }

    /// Stops the server (if running) and starts it again on the port it chose at its first
    /// launch (and the same monitoring port), with the same store directory and config; waits
    /// until it accepts clients again.
    public func restart() async throws {
        stop()
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: startupTimeout)
        while true {
            do {
                try await launchAndWait()
                return
            } catch let error as LaunchError {
                switch error {
                case .addressInUse(let underlying):
                    // The old socket may linger briefly; keep trying until the deadline.
                    if clock.now >= deadline { throw underlying }
                    try await Task.sleep(for: .milliseconds(100))
                case .failed(let underlying):
                    throw underlying
                }
            }
        }
    }

    /// Everything the server has written to its log so far.
    public func logContents() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Connects to `host:port`, reads the greeting and returns the first line
    /// (e.g. `INFO {...}`) without the trailing CRLF. Throws when the
    /// connection is refused or nothing arrives within `timeout`.
    public static func probeInfo(
        host: String = "127.0.0.1",
        port: Int,
        timeout: Duration = .seconds(1)
    ) throws -> String {
        try readGreeting(host: host, port: port, timeout: timeout)
    }

    /// True when a TCP connection to `host:port` can be established right now.
    public static func isPortOpen(host: String = "127.0.0.1", port: Int) -> Bool {
        guard let fd = try? connectSocket(host: host, port: port) else { return false }
        close(fd)
        return true
    }

    deinit {
        stop()
    }

    // MARK: - Internals

    private init(
        jetStream: Bool,
        monitoring: Bool,
        executablePath: String,
        directory: TemporaryDirectory,
        storeDirectory: String,
        portsFileDirectory: String,
        configPath: String?,
        extraArguments: [String],
        startupTimeout: Duration
    ) {
        self.jetStream = jetStream
        self.monitoring = monitoring
        self.executablePath = executablePath
        self.directory = directory
        self.logPath = directory.appending("nats-server.log")
        self.storeDirectory = storeDirectory
        self.portsFileDirectory = portsFileDirectory
        self.configPath = configPath
        self.extraArguments = extraArguments
        self.startupTimeout = startupTimeout
    }

    /// The arguments of a launch: `-1` for every port not known yet (the server picks one
    /// and writes it to its ports file), the known port otherwise.
    private func launchArguments(ports: NATSServerPorts) -> [String] {
        func port(_ known: Int?) -> String { known.map { $0 > 0 ? String($0) : "-1" } ?? "-1" }
        var args: [String] = []
        if let configPath { args += ["-c", configPath] }
        args += ["-a", "127.0.0.1", "-p", port(ports.client), "--ports_file_dir", portsFileDirectory]
        if monitoring { args += ["-m", port(ports.monitoring)] }
        // `-sd` only with `-js`: a store dir alone may enable JetStream on some versions.
        if jetStream { args += ["-js", "-sd", storeDirectory] }
        args += extraArguments
        return args
    }

    private enum LaunchError: Error {
        case addressInUse(NATSServerError)
        case failed(any Error)
    }

    /// Spawns the process and waits for it to greet clients.
    private func launchAndWait() async throws {
        let arguments = self.arguments
        let logStart = appendLogBanner(arguments: arguments)
        let pid: pid_t
        do {
            pid = try spawn(arguments: arguments)
        } catch {
            throw LaunchError.failed(error)
        }
        state.withLock {
            $0.pid = pid
            $0.launches += 1
        }

        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: startupTimeout)
        var lastProbeError = "no attempt made"
        while true {
            if let status = Self.reapIfExited(pid: pid) {
                state.withLock { if $0.pid == pid { $0.pid = nil } }
                let tail = logTail(from: logStart)
                let error = NATSServerError(
                    "nats-server (\(executablePath)) exited during startup on port \(describePort) "
                        + "with \(Self.describe(status: status)); args: \(arguments.joined(separator: " "))",
                    logTail: tail
                )
                if tail.localizedCaseInsensitiveContains("address already in use") {
                    throw LaunchError.addressInUse(error)
                }
                throw LaunchError.failed(error)
            }
            do {
                let port = try currentPort(pid: pid)
                let line = try Self.readGreeting(host: host, port: port, timeout: .milliseconds(500))
                if line.hasPrefix("INFO") {
                    let version = Self.parseVersion(infoLine: line)
                    state.withLock {
                        $0.infoLine = line
                        $0.version = version
                    }
                    return
                }
                lastProbeError = "unexpected greeting: \(line.prefix(200))"
            } catch {
                lastProbeError = "\(error)"
            }
            if clock.now >= deadline { break }
            do {
                try await Task.sleep(for: .milliseconds(20))
            } catch {
                stop()
                throw LaunchError.failed(error)
            }
        }
        stop()
        throw LaunchError.failed(NATSServerError(
            "nats-server on port \(describePort) did not accept clients within \(startupTimeout) "
                + "(last probe: \(lastProbeError)); args: \(arguments.joined(separator: " "))",
            logTail: logTail(from: logStart)
        ))
    }

    /// The client port, read from the ports file of process `pid` at the first launch.
    /// Throws (so the caller polls again) while the server has not written the file yet.
    private func currentPort(pid: pid_t) throws -> Int {
        let known = port
        if known > 0 { return known }
        let ports = try NATSServerPorts.read(directory: portsFileDirectory, pid: pid)
        state.withLock { $0.ports = ports }
        return ports.client
    }

    /// The port for messages: the number once known, else "-1 (chosen by the server)".
    private var describePort: String {
        let known = port
        return known > 0 ? String(known) : "-1 (chosen by the server)"
    }

    /// Appends a marker line to the log and returns the offset after it.
    private func appendLogBanner(arguments: [String]) -> UInt64 {
        let launch = state.withLock { $0.launches } + 1
        let banner = "=== NATSTestSupport launch #\(launch): \(executablePath) \(arguments.joined(separator: " ")) ===\n"
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: logPath) else { return 0 }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(banner.utf8))
            return try handle.offset()
        } catch {
            return 0
        }
    }

    /// The last lines of the log written since `offset`.
    private func logTail(from offset: UInt64, maxBytes: Int = 4096, maxLines: Int = 40) -> String {
        guard let handle = FileHandle(forReadingAtPath: logPath) else { return "" }
        defer { try? handle.close() }
        guard let end = try? handle.seekToEnd() else { return "" }
        var start = offset
        if end > start + UInt64(maxBytes) { start = end - UInt64(maxBytes) }
        guard (try? handle.seek(toOffset: start)) != nil,
              let data = try? handle.readToEnd()
        else { return "" }
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.suffix(maxLines).joined(separator: "\n")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// posix_spawn the server with stdout+stderr appended to the log file.
    private func spawn(arguments: [String]) throws -> pid_t {
        #if canImport(Darwin)
        var actions: posix_spawn_file_actions_t?
        var attributes: posix_spawnattr_t?
        #else
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        // Do not let the test process's blocked/ignored signals leak into the server.
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executablePath] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }

        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executablePath, &actions, &attributes, argv, envp)
        guard rc == 0 else {
            throw NATSServerError(
                "cannot launch nats-server at '\(executablePath)': \(String(cString: strerror(rc))) "
                    + "(set NATS_SERVER_BIN to the nats-server binary)"
            )
        }
        return pid
    }

    /// Non-blocking check: returns the wait status when the child has exited.
    private static func reapIfExited(pid: pid_t) -> Int32? {
        var status: Int32 = 0
        while true {
            let rc = waitpid(pid, &status, WNOHANG)
            if rc == pid { return status }
            if rc == 0 { return nil }
            if errno == EINTR { continue }
            // ECHILD: already reaped elsewhere; treat as gone.
            return -1
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL and reap.
    private static func terminate(pid: pid_t, grace: Duration) {
        if reapIfExited(pid: pid) != nil { return }
        kill(pid, SIGTERM)
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: grace)
        while clock.now < deadline {
            if reapIfExited(pid: pid) != nil { return }
            usleep(5_000)
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    }

    private static func describe(status: Int32) -> String {
        if status == -1 { return "unknown status" }
        let signal = status & 0x7f
        if signal == 0 { return "exit code \((status >> 8) & 0xff)" }
        return "signal \(signal)"
    }

    private static func parseVersion(infoLine: String) -> String? {
        guard let brace = infoLine.firstIndex(of: "{") else { return nil }
        let json = Data(infoLine[brace...].utf8)
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            return nil
        }
        return object["version"] as? String
    }

    // MARK: - Sockets

    private static func errnoText() -> String {
        let code = errno
        return "\(String(cString: strerror(code))) (errno \(code))"
    }

    private static func makeTCPSocket() throws -> Int32 {
        #if canImport(Darwin)
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        #else
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #endif
        guard fd >= 0 else { throw NATSServerError("socket() failed: \(errnoText())") }
        return fd
    }

    private static func loopbackAddress(port: Int, host: String = "127.0.0.1") -> sockaddr_in {
        var addr = sockaddr_in()
        #if canImport(Darwin)
        addr.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        #endif
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port)).bigEndian
        if inet_pton(AF_INET, host, &addr.sin_addr) != 1 {
            addr.sin_addr = in_addr(s_addr: UInt32(0x7f00_0001).bigEndian)
        }
        return addr
    }

    private static func connectSocket(host: String, port: Int) throws -> Int32 {
        let fd = try makeTCPSocket()
        var addr = loopbackAddress(port: port, host: host)
        var rc: Int32
        repeat {
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        } while rc != 0 && errno == EINTR
        guard rc == 0 else {
            let text = errnoText()
            close(fd)
            throw NATSServerError("connect \(host):\(port) failed: \(text)")
        }
        return fd
    }

    private static func readGreeting(host: String, port: Int, timeout: Duration) throws -> String {
        let fd = try connectSocket(host: host, port: port)
        defer { close(fd) }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while received.count < 256 * 1024 {
            let now = clock.now
            guard now < deadline else { break }
            let remaining = now.duration(to: deadline).components
            let micros = max(1_000, remaining.seconds * 1_000_000 + remaining.attoseconds / 1_000_000_000_000)
            var tv = timeval()
            tv.tv_sec = .init(micros / 1_000_000)
            tv.tv_usec = .init(micros % 1_000_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                received.append(contentsOf: buffer[0..<n])
                if let newline = received.firstIndex(of: UInt8(ascii: "\n")) {
                    var line = received[..<newline]
                    if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                    return String(decoding: line, as: UTF8.self)
                }
                continue
            }
            if n == 0 { break }  // peer closed
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { break }
            throw NATSServerError("recv from \(host):\(port) failed: \(errnoText())")
        }
        if received.isEmpty {
            throw NATSServerError("no greeting from \(host):\(port) within \(timeout)")
        }
        return String(decoding: received, as: UTF8.self)
    }
}
