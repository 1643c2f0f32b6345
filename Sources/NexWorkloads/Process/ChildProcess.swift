#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A child process started with `posix_spawn`, its output appended to a file.
///
/// Small on purpose: the node starts helpers (`nats-server --dev`, later agents) and must
/// stop them reliably; it needs no pipes or run loop (and no Foundation `Process`).
public final class ChildProcess: Sendable {
    public let pid: pid_t
    public let executable: String
    /// The exit status once reaped (the negated signal number if killed by a signal).
    private let reaped = Mutex<Int32?>(nil)

    public struct SpawnError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts `executable` with `arguments`; stdout is appended to `outputPath` (or discarded),
    /// stderr to `errorPath`, or to the same place when it is nil. The environment is this
    /// process's unless given.
    public init(executable: String, arguments: [String], environment: [String: String]? = nil,
                outputPath: String? = nil, errorPath: String? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let output = outputPath ?? "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        if let errorPath {
            posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { envp?.forEach { free($0) } }

        var child: pid_t = 0
        let result = envp.map { envp in posix_spawn(&child, executable, &actions, nil, argv, envp) }
            ?? posix_spawn(&child, executable, &actions, nil, argv, environ)
        guard result == 0 else {
            throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        pid = child
        self.executable = executable
    }

    /// Whether the child still runs (reaps it when it has exited).
    public var isRunning: Bool { exitStatus == nil }

    /// The exit status, or nil while it runs.
    public var exitStatus: Int32? {
        reaped.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
            let signal = raw & 0x7F
            status = signal == 0 ? (raw >> 8) & 0xFF : -signal
            return status
        }
    }

    public func signal(_ number: Int32) {
        if isRunning { kill(pid, number) }
    }

    /// SIGTERM, then SIGKILL after `grace`; returns once the child is gone.
    public func stop(grace: Duration = .seconds(5)) {
        signal(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        if isRunning {
            signal(SIGKILL)
            while isRunning { usleep(1_000) }
        }
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            var raw: Int32 = 0
            waitpid(pid, &raw, 0)
        }
    }
}
