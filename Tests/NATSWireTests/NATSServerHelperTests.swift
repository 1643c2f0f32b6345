import Foundation
import NATSTestSupport
import Testing

@Suite("NATSServer test helper")
struct NATSServerHelperTests {
    @Test("starts a real server that accepts TCP and greets with INFO")
    func startsAndGreets() async throws {
        let server = try await NATSServer.start()
        defer { server.stop() }

        #expect(server.port > 0 && server.port < 65536)
        #expect(server.url == "nats://127.0.0.1:\(server.port)")
        #expect(server.isRunning)
        #expect(NATSServer.isPortOpen(port: server.port))

        let info = try NATSServer.probeInfo(port: server.port)
        #expect(info.hasPrefix("INFO "))
        #expect(info.contains("\"jetstream\":true"))

        let version = try #require(server.version)
        #expect(version.split(separator: ".").count >= 3)
        #expect(FileManager.default.fileExists(atPath: server.logPath))
    }

    @Test("restart keeps the port and the JetStream store directory")
    func restartSamePort() async throws {
        let server = try await NATSServer.start()
        defer { server.stop() }
        let port = server.port
        let firstPid = try #require(server.pid)

        try await server.restart()

        #expect(server.port == port)
        let secondPid = try #require(server.pid)
        #expect(secondPid != firstPid)
        let info = try NATSServer.probeInfo(port: port)
        #expect(info.hasPrefix("INFO "))
        #expect(FileManager.default.fileExists(atPath: server.storeDirectory))
        // Both launches are recorded in the one log file.
        #expect(server.logContents().components(separatedBy: "NATSTestSupport launch #").count == 3)
    }

    @Test("the server picks its own ports (-p -1, -m -1) and reports them in its ports file")
    func serverPicksItsPorts() async throws {
        let server = try await NATSServer.start(jetStream: false, monitoring: true)
        defer { server.stop() }
        let monitoringPort = try #require(server.monitoringPort)
        #expect(monitoringPort != server.port)
        #expect(NATSServer.isPortOpen(port: monitoringPort))
        #expect(server.logContents().contains("-p -1 --ports_file_dir \(server.portsFileDirectory) -m -1"))
        // The ports file is the one the running process wrote.
        let pid = try #require(server.pid)
        let files = try FileManager.default.contentsOfDirectory(atPath: server.portsFileDirectory)
        #expect(files.contains { $0.hasSuffix("_\(pid).ports") }, "\(files)")

        // A restart asks for the ports chosen at the first launch.
        try await server.restart()
        #expect(server.arguments.contains(String(server.port)))
        #expect(server.monitoringPort == monitoringPort)
        #expect(NATSServer.isPortOpen(port: monitoringPort))
    }

    @Test("stop terminates the process and closes the port")
    func stopClosesPort() async throws {
        let server = try await NATSServer.start()
        let port = server.port
        let pid = try #require(server.pid)
        server.stop()

        #expect(!server.isRunning)
        #expect(!NATSServer.isPortOpen(port: port))
        #expect(throws: (any Error).self) { try NATSServer.probeInfo(port: port) }
        // The process is gone (reaped): signalling it fails.
        #expect(kill(pid, 0) != 0)
        // Stopping twice is harmless.
        server.stop()
    }

    @Test("config text is applied: token auth makes INFO carry auth_required")
    func configWithToken() async throws {
        let server = try await NATSServer.start(config: """
            authorization {
              token: "s3cret"
            }
            """)
        defer { server.stop() }
        let path = try #require(server.configPath)
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("s3cret"))

        let info = try NATSServer.probeInfo(port: server.port)
        #expect(info.contains("\"auth_required\":true"))
    }

    @Test("JetStream can be turned off")
    func withoutJetStream() async throws {
        let server = try await NATSServer.start(jetStream: false)
        defer { server.stop() }
        let info = try NATSServer.probeInfo(port: server.port)
        #expect(info.hasPrefix("INFO "))
        #expect(!info.contains("\"jetstream\":true"))
    }

    @Test("a broken config fails fast with the server's output in the error")
    func badConfigReportsStderr() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        do {
            let server = try await NATSServer.start(config: "this is { not valid")
            server.stop()
            Issue.record("expected start to fail")
        } catch let error as NATSServerError {
            #expect(!error.logTail.isEmpty)
            #expect(error.description.contains("exited during startup"))
        }
        #expect(started.duration(to: clock.now) < .seconds(10))
    }

    @Test("deinit stops the server")
    func deinitStops() async throws {
        var server: NATSServer? = try await NATSServer.start(jetStream: false)
        let port = try #require(server?.port)
        let directory = try #require(server?.directory.path)
        #expect(NATSServer.isPortOpen(port: port))
        server = nil
        #expect(!NATSServer.isPortOpen(port: port))
        if ProcessInfo.processInfo.environment["NATS_TEST_KEEP_TMP"] == nil {
            #expect(!FileManager.default.fileExists(atPath: directory))
        }
    }

    @Test("waitFor polls until the condition holds, and times out otherwise")
    func waitForHelper() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        try await waitFor(timeout: .seconds(2)) {
            start.duration(to: clock.now) > .milliseconds(50)
        }
        await #expect(throws: WaitForTimeoutError.self) {
            try await waitFor(timeout: .milliseconds(50), "never") { false }
        }
    }
}
