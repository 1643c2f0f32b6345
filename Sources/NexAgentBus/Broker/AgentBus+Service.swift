import ServiceLifecycle

extension AgentBus: Service {
    /// Keeps the bus up until a graceful shutdown (or cancellation), then shuts it down:
    /// stops listening and closes every connection.
    ///
    /// Call ``start()`` first: the node needs the bus's URL before it starts its agents, and
    /// its own link before any other service runs. In a `ServiceGroup`, list the bus before
    /// the services that use it, so it is shut down after them.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }
}
