import ServiceLifecycle

extension NATSClient: Service {
    /// Keeps the client connected until the task is cancelled or a graceful shutdown is
    /// triggered, then closes: ``drain(timeout:)`` on graceful shutdown, ``close()`` on cancellation.
    ///
    /// Connects first if ``connect()`` was not called. Returns when the client closes (also
    /// when ``close()`` is called elsewhere); throws the error the client closed with when it
    /// closed on its own (refused credentials, a fatal server error, reconnects given up).
    ///
    /// ```swift
    /// let client = try NATSClient(options: options)
    /// let group = ServiceGroup(services: [client, myService], logger: logger)
    /// try await group.run()
    /// ```
    public func run() async throws {
        if state.withLock({ $0.lifecycle == .idle }) { try await connect() }
        let shutdownRequested = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.waitUntilClosed()
                return false
            }
            group.addTask {
                do {
                    try await gracefulShutdown()
                    return true
                } catch {
                    return false  // cancelled
                }
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if shutdownRequested {
            guard state.withLock({ $0.lifecycle != .closed }) else { return }
            do {
                try await drain()
            } catch {
                logger.warning("natswire drain at shutdown did not finish", metadata: ["error": "\(error)"])
                await close()
            }
        } else if Task.isCancelled {
            await close()
        } else if case .closed(let error?) = state.withLock({ $0.machine.state }) {
            throw error
        }
    }

    /// Returns once the client is closed, or when the calling task is cancelled.
    func waitUntilClosed() async {
        let id = state.withLock { s in
            s.nextCloseWaiterID += 1
            return s.nextCloseWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waiting = state.withLock { s -> Bool in
                    guard s.lifecycle != .closed, !Task.isCancelled else { return false }
                    s.closeWaiters[id] = continuation
                    return true
                }
                if !waiting { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.closeWaiters.removeValue(forKey: id) }?.resume()
        }
    }
}
