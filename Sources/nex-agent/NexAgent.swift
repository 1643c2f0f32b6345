import ArgumentParser
import Logging
import NexAgentKit
import NexFunctions
import ServiceLifecycle

@main
struct NexAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nex-agent",
        abstract: "Runs one workload for its node, over the loopback agent bus.",
        discussion: """
            Started by nex-node, configured only through its environment: NEX_AGENT_BUS_URL, NEX_AGENT_ID, \
            NEX_AGENT_NKEY_SEED, NEX_AGENT_DIR, NEX_AGENT_WORK_DIR (optional), NEX_NODE_PID (0: sandboxed). SIGTERM stops the workload gracefully; SIGHUP (its parent-death \
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
        // The agent ends when its workload has (successful return); SIGTERM and SIGINT are a
        // graceful shutdown, which stops the workload within its grace period.
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
    }
}
