import ArgumentParser
import Dispatch
import Logging
import NexFunctions
import NexAgentBus
import NexAgentKit
#if canImport(Glibc)
import Glibc
#endif

@main
struct NexAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nex-agent",
        abstract: "Runs one workload for its node, over the loopback agent bus.",
        discussion: """
            Started by nex-node, configured only through its environment: NEX_AGENT_BUS_URL, NEX_AGENT_ID, \
            NEX_AGENT_NKEY_SEED, NEX_AGENT_DIR, NEX_NODE_PID. SIGTERM stops the workload gracefully; SIGHUP (its parent-death \
            signal) kills the workload and all its descendants at once and exits. \
            See docs/agent-protocol.md.
            """,
        version: "0.1.0"
    )

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "nex-agent")
        logger.logLevel = .info
        let service: AgentService
        do {
            let settings = try AgentService.Settings()
            logger[metadataKey: "agent"] = "\(settings.agentID)"
            service = try AgentService(settings: settings, version: Self.configuration.version, logger: logger,
                                       functionRuntime: NexFunctionRuntime())
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(2)
        }
        let signals = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                logger.info("signal \(number): stopping")
                Task { await service.shutdown() }
            }
            source.resume()
            return source
        }
        // The node died (the agent's parent-death signal): kill the workload's whole tree now,
        // whatever the agent is doing, then exit.
        signal(AgentEnvironment.parentDeathSignal, SIG_IGN)
        let nodeDeath = DispatchSource.makeSignalSource(signal: AgentEnvironment.parentDeathSignal, queue: .global())
        nodeDeath.setEventHandler {
            service.nodeDied()
            Glibc.exit(3)
        }
        nodeDeath.resume()
        defer {
            signals.forEach { $0.cancel() }
            nodeDeath.cancel()
        }
        do {
            try await service.run()
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
    }
}
