import Foundation

/// Runs nats-py scripts for the interop tests (`python3` with the `nats` package).
enum NatsPyScript {
    struct Failure: Error, CustomStringConvertible {
        var status: Int32
        var output: String
        var description: String { "python3 exited with \(status):\n\(output)" }
    }

    /// Runs `script` with `NATS_URL` set, and returns what it printed (stdout), trimmed.
    static func run(_ script: String, url: String, timeout: Duration = .seconds(60)) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        var environment = ProcessInfo.processInfo.environment
        environment["NATS_URL"] = url
        process.environment = environment
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let killer = Task {
            try await Task.sleep(for: timeout)
            process.terminate()
        }
        let (stdout, stderr) = await withCheckedContinuation { (continuation: CheckedContinuation<(Data, Data), Never>) in
            DispatchQueue.global().async {
                let out = output.fileHandleForReading.readDataToEndOfFile()
                let err = errors.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: (out, err))
            }
        }
        killer.cancel()
        let text = String(decoding: stdout, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw Failure(status: process.terminationStatus, output: text + String(decoding: stderr, as: UTF8.self))
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A script body run inside `async def main(nc, js)`, with `nc` connected to `NATS_URL`.
    static func script(_ body: String) -> String {
        let indented = body.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
        return """
        import asyncio, hashlib, os, sys, tempfile
        import nats

        async def main(nc, js):
        \(indented)

        async def run():
            nc = await nats.connect(os.environ["NATS_URL"])
            try:
                await main(nc, nc.jetstream())
            finally:
                await nc.close()

        asyncio.run(run())
        """
    }
}
