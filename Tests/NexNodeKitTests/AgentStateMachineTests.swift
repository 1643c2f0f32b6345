import Testing
@testable import NexNodeKit

/// The agents' lifecycle and the warm pool, without a process or a bus.
@Suite struct AgentStateMachineTests {
    typealias Machine = AgentStateMachine
    static let start = ContinuousClock.now
    static let timeout = Duration.seconds(5)

    /// A pool of one with agent `A` in the named state.
    static func machine(in name: String) -> Machine {
        var machine = Machine(poolSize: 1, handshakeTimeout: timeout)
        #expect(machine.fillPool() == .spawnForPool(count: 1))
        let claimed = machine.spawnStarted("A", for: .pool)
        #expect(claimed)
        #expect(machine.fillPool() == .none, "a spawn under way counts for the pool")
        if name == "spawning" { return machine }
        #expect(machine.spawned("A", now: start) == .none)
        if name == "awaitingHandshake" { return machine }
        #expect(machine.handshakeReceived("A") == .acceptHandshake(agent: "A", handOut: false))
        if name == "warm" { return machine }
        #expect(machine.acquire() == .handOut(agent: "A", refill: 1))
        if name == "assigned" { return machine }
        #expect(machine.retireRequested("A") == .terminate(agent: "A"))
        precondition(name == "stopping", name)
        return machine
    }

    static func name(_ state: Machine.State?) -> String {
        switch state {
        case nil: "gone"
        case .spawning?: "spawning"
        case .awaitingHandshake?: "awaitingHandshake"
        case .warm?: "warm"
        case .assigned?: "assigned"
        case .stopping?: "stopping"
        }
    }

    static let states = ["spawning", "awaitingHandshake", "warm", "assigned", "stopping"]
    static let events = ["spawned", "handshake", "deadline", "pingFailed", "retire", "exited", "nodeStopping"]
    static let table: [String: [String]] = [
        //                     spawned              handshake   deadline     pingFailed   retire       exited   nodeStopping
        "spawning":          ["awaitingHandshake", "warm",     "spawning",  "spawning",  "stopping",  "gone",  "stopping"],
        "awaitingHandshake": ["awaitingHandshake", "warm",     "stopping",  "awaitingHandshake", "stopping", "gone", "stopping"],
        "warm":              ["warm",              "warm",     "warm",      "stopping",  "stopping",  "gone",  "stopping"],
        "assigned":          ["assigned",          "assigned", "assigned",  "stopping",  "stopping",  "gone",  "stopping"],
        "stopping":          ["stopping",          "stopping", "stopping",  "stopping",  "stopping",  "gone",  "stopping"],
    ]

    static func apply(_ event: String, to machine: inout Machine) -> [Machine.Action] {
        switch event {
        case "spawned": [machine.spawned("A", now: start)]
        case "handshake": [machine.handshakeReceived("A")]
        case "deadline": machine.tick(now: start.advanced(by: timeout))
        case "pingFailed": [machine.pingFailed("A")]
        case "retire": [machine.retireRequested("A")]
        case "exited": [machine.exited("A", status: 1)]
        case "nodeStopping": [machine.nodeStopping()]
        default: preconditionFailure(event)
        }
    }

    @Test(arguments: states)
    func everyEventFromEveryState(_ state: String) throws {
        let expected = try #require(Self.table[state])
        for (index, event) in Self.events.enumerated() {
            var machine = Self.machine(in: state)
            #expect(Self.name(machine.state(of: "A")) == state)
            let actions = Self.apply(event, to: &machine)
            #expect(Self.name(machine.state(of: "A")) == expected[index], "\(state) + \(event): \(actions)")
            #expect(machine.warm == (machine.state(of: "A") == .warm ? ["A"] : []), "\(state) + \(event)")
        }
    }

    @Test func theWarmPoolHandsOutTheOldestAndIsRefilled() {
        var machine = Machine(poolSize: 2, handshakeTimeout: Self.timeout)
        #expect(machine.fillPool() == .spawnForPool(count: 2))
        for agent in ["A", "B"] {
            _ = machine.spawnStarted(agent, for: .pool)
            _ = machine.spawned(agent, now: Self.start)
        }
        _ = machine.handshakeReceived("B")
        _ = machine.handshakeReceived("A")
        #expect(machine.warm == ["B", "A"])
        #expect(machine.handshaken == ["A", "B"])
        #expect(machine.acquire() == .handOut(agent: "B", refill: 1))
        #expect(machine.acquire() == .handOut(agent: "A", refill: 2))
        // Empty: the deploy gets an agent of its own, handed to it at its handshake.
        #expect(machine.acquire() == .spawnDedicated)
        _ = machine.spawnStarted("D", for: .dedicated)
        #expect(machine.fillPool() == .spawnForPool(count: 2), "a dedicated agent is not the pool's")
        _ = machine.spawned("D", now: Self.start)
        #expect(machine.handshakeReceived("D") == .acceptHandshake(agent: "D", handOut: true))
        #expect(machine.state(of: "D") == .assigned && machine.warm.isEmpty)
    }

    /// A deploy that needs an agent of its own (no network) gets one started for it even
    /// while the pool holds warm agents, and the pool keeps them.
    @Test func aDedicatedAcquireLeavesThePoolAlone() {
        var machine = Machine(poolSize: 1, handshakeTimeout: Self.timeout)
        _ = machine.spawnStarted("A", for: .pool)
        _ = machine.spawned("A", now: Self.start)
        _ = machine.handshakeReceived("A")
        #expect(machine.acquire(dedicated: true) == .spawnDedicated)
        #expect(machine.warm == ["A"])
        _ = machine.spawnStarted("N", for: .dedicated)
        _ = machine.spawned("N", now: Self.start)
        #expect(machine.handshakeReceived("N") == .acceptHandshake(agent: "N", handOut: true))
        #expect(machine.warm == ["A"] && machine.state(of: "N") == .assigned)
        #expect(machine.acquire() == .handOut(agent: "A", refill: 1))
    }

    @Test func aHandshakeTimeoutKillsTheAgentAndFailsItsDeploy() {
        var machine = Machine(poolSize: 0, handshakeTimeout: Self.timeout)
        #expect(machine.acquire() == .spawnDedicated)
        _ = machine.spawnStarted("D", for: .dedicated)
        _ = machine.spawned("D", now: Self.start)
        #expect(machine.tick(now: Self.start.advanced(by: .seconds(4))).isEmpty)
        #expect(machine.tick(now: Self.start.advanced(by: Self.timeout))
            == [.kill(agent: "D", unresponsive: false, failWaiter: .handshakeTimeout(id: "D", after: Self.timeout))])
        // A handshake after the deadline is not answered; the exit is cleaned up, not reported as a workload's.
        #expect(machine.handshakeReceived("D") == .none)
        #expect(machine.exited("D", status: -9) == .cleanUp(agent: "D", report: true, warn: true, failWaiter: false, refill: 0))
        #expect(machine.state(of: "D") == nil)
    }

    @Test func anAgentThatDiesBeforeItsHandshakeFailsTheDeployWaitingForIt() {
        var machine = Machine(poolSize: 0, handshakeTimeout: Self.timeout)
        _ = machine.spawnStarted("D", for: .dedicated)
        _ = machine.spawned("D", now: Self.start)
        #expect(machine.exited("D", status: 127) == .cleanUp(agent: "D", report: true, warn: true, failWaiter: true, refill: 0))
    }

    @Test func healthPingFailuresKillAndTheExitRefillsThePool() {
        var machine = Self.machine(in: "warm")
        #expect(machine.pingFailed("A") == .kill(agent: "A", unresponsive: true, failWaiter: nil))
        #expect(machine.pingFailed("A") == .none, "killed once")
        #expect(machine.fillPool() == .spawnForPool(count: 1), "a dying warm agent is no longer in the pool")
        #expect(machine.exited("A", status: -9) == .cleanUp(agent: "A", report: true, warn: true, failWaiter: false, refill: 1))

        var assigned = Self.machine(in: "assigned")
        _ = assigned.spawnStarted("B", for: .pool)
        #expect(assigned.exited("A", status: 0) == .cleanUp(agent: "A", report: true, warn: false, failWaiter: false, refill: 0),
                "an assigned agent that ends cleanly is not a warning")
    }

    @Test func aSpawnFailureIsRetriedForThePoolOnly() {
        var machine = Self.machine(in: "spawning")
        #expect(machine.spawnFailed("A") == .spawnForPool(count: 1))
        _ = machine.spawnStarted("D", for: .dedicated)
        #expect(machine.spawnFailed("D") == .none)
    }

    @Test func theNodeStoppingStopsEveryAgentAndStartsNoMore() {
        var machine = Self.machine(in: "warm")
        _ = machine.spawnStarted("B", for: .dedicated)
        #expect(machine.nodeStopping() == .terminateAll(["A", "B"]))
        #expect(machine.fillPool() == .none && machine.acquire() == .none)
        let claimed = machine.spawnStarted("C", for: .pool)
        #expect(!claimed)
        #expect(machine.spawned("B", now: Self.start) == .terminate(agent: "B"), "started while the node stops")
        #expect(machine.pingFailed("A") == .none, "a ping cut short by the stop is not a dead agent")
        #expect(machine.exited("A", status: 0) == .cleanUp(agent: "A", report: false, warn: false, failWaiter: false, refill: 0))
    }
}
