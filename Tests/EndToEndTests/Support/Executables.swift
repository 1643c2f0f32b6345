import Foundation
import NexWorkloads
import NATSTestSupport

/// Finds the project's executables (`nex-node`, `nexctl`) built next to the running test
/// bundle: `swift build --build-tests` puts them in the same directory.
enum Executables {
    struct Missing: Error, CustomStringConvertible {
        var name: String
        var searched: [String]
        var description: String {
            "\(name) not found next to the test binary (looked in: \(searched.joined(separator: ", "))); "
                + "build it first: swift build --build-tests --scratch-path <same path>, or set NEX_BIN_DIR"
        }
    }

    /// The absolute path of `name`, or a `Missing` error naming the directories searched.
    static func path(_ name: String) throws -> String {
        var searched: [String] = []
        for directory in candidateDirectories() {
            searched.append(directory)
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw Missing(name: name, searched: searched)
    }

    /// The repository (for its examples), found from this source file's path.
    static let repositoryRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static var nexNode: String { get throws { try path("nex-node") } }
    static var nexctl: String { get throws { try path("nexctl") } }

    /// `$NEX_BIN_DIR`, then the directory of the running test binary and its ancestors.
    private static func candidateDirectories() -> [String] {
        var directories: [String] = []
        if let fromEnvironment = ProcessInfo.processInfo.environment["NEX_BIN_DIR"], !fromEnvironment.isEmpty {
            directories.append(fromEnvironment)
        }
        let running = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? Bundle.main.executablePath ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: running).deletingLastPathComponent()
        // The test binary sits in `<scratch>/<triple>/debug/` (or inside a `.xctest` bundle on
        // Darwin); walk up a few levels.
        for _ in 0..<4 {
            directories.append(url.path)
            url = url.deletingLastPathComponent()
        }
        return directories
    }
}

/// The result of running a command to completion.
struct CommandResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `executable` with `arguments`, collecting its output through files (no pipe can fill
/// up), and kills it if it runs longer than `timeout`.
func runCommand(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: Duration = .seconds(10)
) async throws -> CommandResult {
    let directory = try TemporaryDirectory(prefix: "nex-e2e-cmd-")
    let outPath = directory.path + "/stdout", errPath = directory.path + "/stderr"
    FileManager.default.createFile(atPath: outPath, contents: nil)
    FileManager.default.createFile(atPath: errPath, contents: nil)
    // posix_spawn + waitpid (NexWorkloads.ChildProcess): Foundation's Process could miss a
    // child's exit when many tests spawn processes at once.
    let process = try ChildProcess(
        executable: executable, arguments: arguments, environment: environment ?? ChildEnvironment.base(),
        outputPath: outPath, errorPath: errPath)
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        if ContinuousClock.now >= deadline {
            process.stop(grace: .zero)
            throw CommandTimeout(command: ([executable] + arguments).joined(separator: " "), timeout: timeout)
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    return CommandResult(status: process.exitStatus ?? -1, stdout: stdout, stderr: stderr)
}

struct CommandTimeout: Error, CustomStringConvertible {
    var command: String
    var timeout: Duration
    var description: String { "\(command) did not finish within \(timeout)" }
}

/// The environment given to child processes: ours, without anything that would point them at
/// another NATS system or at the supervisor of the test run.
enum ChildEnvironment {
    static func base() -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for key in ["NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_CREDS", "NATS_NKEY", "NATS_CERT", "NATS_KEY", "NATS_CA",
                    "NATS_CONTEXT", "NATS_TIMEOUT", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "STATE_DIRECTORY"] {
            environment.removeValue(forKey: key)
        }
        return environment
    }
}
