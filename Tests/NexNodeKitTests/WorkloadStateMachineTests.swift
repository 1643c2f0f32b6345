import Testing
@testable import NexNodeKit
import NexWorkloads

/// The workload lifecycle and the node's deploy limits, without a socket or a process.
@Suite struct WorkloadStateMachineTests {
    typealias Machine = WorkloadStateMachine
    static let unlimited = Machine.Limits(maxWorkloads: 0, maxConcurrentDeploys: 16, maxTotalBytes: 0)
    static let w = "W"

    /// A machine with workload `W` (essential) in the named state.
    static func machine(in name: String, limits: Machine.Limits = unlimited) -> Machine {
        var machine = Machine(limits: limits)
        guard case .fetchArtifact(let reservation) = machine.deployRequested(nodeID: "N", lameDuck: false) else {
            Issue.record("no reservation"); return machine
        }
        let claimed = machine.claimToken("issuer.jti", for: reservation)
        #expect(claimed)
        #expect(machine.artifactFetched(reservation, bytes: 10, workloadName: "w") == .createWorkload(reservation))
        #expect(machine.reservationCommitted(reservation, workload: w, essential: true, isFunction: false)
            == .assignAgent(workload: w))
        if name == "deploying" { return machine }
        _ = machine.agentAssigned(w, agent: "A")
        if name == "deploying(A)" { return machine }
        if name == "failed" {
            _ = machine.agentLost("A", code: 1, reason: "killed", ranFor: .zero, lameDuck: false)
            return machine
        }
        _ = machine.agentAccepted(w, agent: "A")
        switch name {
        case "running(A)": return machine
        case "stopping(A)": _ = machine.stopRequested(w); return machine
        case "stopped": _ = machine.workloadExited(agent: "A", code: 0, reason: "done", ranFor: .seconds(1), lameDuck: false); return machine
        default: break
        }
        _ = machine.workloadExited(agent: "A", code: 1, reason: "crashed", ranFor: .seconds(1), lameDuck: false)
        if name == "backoff" { return machine }
        _ = machine.restartTimerFired(w, lameDuck: false)
        if name == "assigning" { return machine }
        _ = machine.agentAssigned(w, agent: "B")
        precondition(name == "restarting(B)", "unknown state \(name)")
        return machine
    }

    static func name(_ state: Machine.State?) -> String {
        switch state {
        case nil: "gone"
        case .deploying(nil)?: "deploying"
        case .deploying(let agent?)?: "deploying(\(agent))"
        case .running(let agent)?: "running(\(agent))"
        case .restarting(nil, .backoff)?: "backoff"
        case .restarting(nil, .assigning)?: "assigning"
        case .restarting(let agent?, .deploying)?: "restarting(\(agent))"
        case .restarting?: "restarting(?)"
        case .stopping(nil)?: "stopping"
        case .stopping(let agent?)?: "stopping(\(agent))"
        case .stopped?: "stopped"
        case .failed?: "failed"
        }
    }

    static let states = ["deploying", "deploying(A)", "running(A)", "backoff", "assigning", "restarting(B)",
                         "stopping(A)", "stopped", "failed"]
    static let events = ["assign", "unavailable", "accepted", "refused", "trigger", "stop", "exited", "lost", "timer",
                         "nodeStopping"]

    /// The state each event leaves `W` in, from each state (events about an agent name the
    /// workload's current agent, or A when it has none).
    static let table: [String: [String]] = [
        //                 assign           unavailable   accepted         refused       trigger          stop             exited       lost         timer          nodeStopping
        "deploying":     ["deploying(Z)",  "gone",       "deploying",     "deploying",  "deploying",     "stopping",      "deploying", "deploying", "deploying",   "stopping"],
        "deploying(A)":  ["deploying(A)",  "deploying(A)", "running(A)",  "gone",       "running(A)",    "stopping(A)",   "failed",    "failed",    "deploying(A)", "stopping(A)"],
        "running(A)":    ["running(A)",    "running(A)", "running(A)",    "running(A)", "running(A)",    "stopping(A)",   "backoff",   "backoff",   "running(A)",  "stopping(A)"],
        "backoff":       ["backoff",       "backoff",    "backoff",       "backoff",    "backoff",       "stopping",      "backoff",   "backoff",   "assigning",   "stopping"],
        "assigning":     ["restarting(Z)", "backoff",    "assigning",     "assigning",  "assigning",     "stopping",      "assigning", "assigning", "assigning",   "stopping"],
        "restarting(B)": ["restarting(B)", "restarting(B)", "running(B)", "backoff",    "restarting(B)", "stopping(B)",   "backoff",   "backoff",   "restarting(B)", "stopping(B)"],
        "stopping(A)":   ["stopping(A)",   "stopping(A)", "stopping(A)",  "stopping(A)", "stopping(A)",  "stopping(A)",   "stopping(A)", "stopping(A)", "stopping(A)", "stopping(A)"],
        "stopped":       ["stopped",       "stopped",    "stopped",       "stopped",    "stopped",       "stopped",       "stopped",   "stopped",   "stopped",     "stopped"],
        "failed":        ["gone",          "gone",       "gone",          "gone",       "gone",          "failed",        "failed",    "failed",    "failed",      "failed"],
    ]

    static func apply(_ event: String, to machine: inout Machine) -> [Machine.Action] {
        let agent = machine.workload(w)?.agent ?? "A"
        switch event {
        case "assign": return [machine.agentAssigned(w, agent: "Z")]
        case "unavailable": return [machine.agentUnavailable(w, reason: "no agent")]
        case "accepted": return [machine.agentAccepted(w, agent: agent)]
        case "refused": return [machine.agentRefused(w, agent: agent, reason: "refused")]
        case "trigger": return [machine.triggerStarted(w, agent: agent)]
        case "stop": return [machine.stopRequested(w)]
        case "exited": return [machine.workloadExited(agent: agent, code: 1, reason: "crashed", ranFor: .seconds(1), lameDuck: false)]
        case "lost": return [machine.agentLost(agent, code: -9, reason: "killed", ranFor: .seconds(1), lameDuck: false)]
        case "timer": return [machine.restartTimerFired(w, lameDuck: false)]
        case "nodeStopping": return machine.nodeStopping()
        default: preconditionFailure(event)
        }
    }

    @Test(arguments: states)
    func everyEventFromEveryState(_ state: String) throws {
        let expected = try #require(Self.table[state])
        for (index, event) in Self.events.enumerated() {
            var machine = Self.machine(in: state)
            #expect(Self.name(machine.state(of: Self.w)) == state)
            let actions = Self.apply(event, to: &machine)
            #expect(Self.name(machine.state(of: Self.w)) == expected[index], "\(state) + \(event): \(actions)")
            // Whatever happened, the counts agree with the table.
            let live = machine.workload(Self.w)?.isLive == true ? 1 : 0
            #expect(machine.liveCount == live, "\(state) + \(event)")
            #expect(machine.reservationCount == 0)
        }
    }

    // MARK: The races the review named

    @Test func aStopDuringAStartIsNotUndone() {
        // Stopped while waiting for an agent: the agent that arrives is retired, the workload stays stopped.
        var machine = Self.machine(in: "deploying")
        #expect(machine.stopRequested(Self.w) == .stop(workload: Self.w, undeploy: nil))
        let late = machine.agentAssigned(Self.w, agent: "Z")
        guard case .abandon(_, let reason, "Z", false) = late else { Issue.record("\(late)"); return }
        #expect(reason.contains("stopped while it started"))
        machine.stopFinished(Self.w)
        #expect(machine.state(of: Self.w) == nil && machine.liveCount == 0)
        #expect(machine.agentAccepted(Self.w, agent: "Z") != .replyStarted(workload: Self.w, agent: "Z"))

        // Stopped while the agent was starting it: its "accepted" does not make it run again.
        var started = Self.machine(in: "deploying(A)")
        #expect(started.stopRequested(Self.w) == .stop(workload: Self.w, undeploy: "A"))
        let accepted = started.agentAccepted(Self.w, agent: "A")
        guard case .abandon(_, _, nil, false) = accepted else { Issue.record("\(accepted)"); return }
        #expect(started.state(of: Self.w) == .stopping(agent: "A"))
        // A second stop is refused, and the first one's end forgets it.
        guard case .refuse(let again) = started.stopRequested(Self.w) else { Issue.record("second stop"); return }
        #expect(again.contains("already stopping"))
    }

    @Test func aDeployBeyondMaxWorkloadsWhileAnotherReservesIsRefused() {
        var machine = Machine(limits: .init(maxWorkloads: 1, maxConcurrentDeploys: 16, maxTotalBytes: 0))
        guard case .fetchArtifact(let first) = machine.deployRequested(nodeID: "N", lameDuck: false) else {
            Issue.record("first deploy refused"); return
        }
        // The first is still fetching its artifact (an await): the second finds its slot taken.
        guard case .refuse(let reason) = machine.deployRequested(nodeID: "N", lameDuck: false) else {
            Issue.record("second deploy reserved"); return
        }
        #expect(reason.contains("max_workloads is 1") && reason.contains("1 workloads"))
        // Rolled back: the slot is free again.
        machine.reservationAbandoned(first)
        guard case .fetchArtifact = machine.deployRequested(nodeID: "N", lameDuck: false) else {
            Issue.record("slot not given back"); return
        }
    }

    @Test func concurrentDeploysOverMaxConcurrentDeploysAreRefused() {
        var machine = Machine(limits: .init(maxWorkloads: 0, maxConcurrentDeploys: 2, maxTotalBytes: 0))
        var reserved: [Machine.ReservationID] = []
        for _ in 0..<2 {
            guard case .fetchArtifact(let id) = machine.deployRequested(nodeID: "N", lameDuck: false) else {
                Issue.record("refused under the limit"); return
            }
            reserved.append(id)
        }
        guard case .refuse(let reason) = machine.deployRequested(nodeID: "N", lameDuck: false) else {
            Issue.record("third concurrent deploy reserved"); return
        }
        #expect(reason.contains("max_concurrent_deploys"))
        // Committed but not yet answered still counts; running does not.
        _ = machine.artifactFetched(reserved[0], bytes: 1, workloadName: "a")
        _ = machine.reservationCommitted(reserved[0], workload: "a", essential: false, isFunction: false)
        #expect(machine.deploysUnderWay == 2)
        _ = machine.agentAssigned("a", agent: "A")
        #expect(machine.agentAccepted("a", agent: "A") == .replyStarted(workload: "a", agent: "A"))
        #expect(machine.deploysUnderWay == 1)
        guard case .fetchArtifact = machine.deployRequested(nodeID: "N", lameDuck: false) else {
            Issue.record("refused after one finished"); return
        }
    }

    @Test func bytesAndTokensAreReservedToo() {
        var machine = Machine(limits: .init(maxWorkloads: 0, maxConcurrentDeploys: 16, maxTotalBytes: 100))
        guard case .fetchArtifact(let a) = machine.deployRequested(nodeID: "N", lameDuck: false),
              case .fetchArtifact(let b) = machine.deployRequested(nodeID: "N", lameDuck: false)
        else { Issue.record("refused"); return }
        let claimed = machine.claimToken("i.1", for: a)
        #expect(claimed)
        let second = machine.claimToken("i.1", for: b)
        #expect(!second, "one token, one deploy at a time")
        #expect(machine.artifactFetched(a, bytes: 60, workloadName: "a") == .createWorkload(a))
        guard case .refuse(let reason) = machine.artifactFetched(b, bytes: 60, workloadName: "b") else {
            Issue.record("over max_total_bytes"); return
        }
        #expect(reason.contains("max_total_bytes (100)"))
        #expect(machine.reservationCount == 1, "the refused one is rolled back")
    }

    @Test func theWorkloadExitsWhileStopping() {
        var machine = Self.machine(in: "stopping(A)")
        #expect(machine.workloadExited(agent: "A", code: 1, reason: "SIGTERM", ranFor: .seconds(5), lameDuck: false) == .none)
        #expect(machine.agentLost("A", code: -9, reason: "killed", ranFor: .seconds(5), lameDuck: false) == .none)
        #expect(machine.state(of: Self.w) == .stopping(agent: "A"), "not restarted, not ended twice")
        machine.stopFinished(Self.w)
        #expect(machine.liveCount == 0)
    }

    @Test func aRestartTimerFiringAfterAStopDoesNothing() {
        var machine = Self.machine(in: "backoff")
        #expect(machine.stopRequested(Self.w) == .stop(workload: Self.w, undeploy: nil))
        #expect(machine.restartTimerFired(Self.w, lameDuck: false) == .none)
        machine.stopFinished(Self.w)
        #expect(machine.restartTimerFired(Self.w, lameDuck: false) == .none)
        #expect(machine.state(of: Self.w) == nil)
    }

    @Test func anAgentLostWhileDeployingFailsTheDeploy() {
        var machine = Self.machine(in: "deploying(A)")
        #expect(machine.workload(runningOn: "A") == Self.w)
        #expect(machine.agentLost("A", code: -9, reason: "its agent was killed by signal 9", ranFor: .zero, lameDuck: false) == .none)
        // The deploy's pending answer finds the failure: it replies with it, retires the agent, cleans up.
        let answer = machine.agentAccepted(Self.w, agent: "A")
        guard case .abandon(_, let reason, "A", true) = answer else { Issue.record("\(answer)"); return }
        #expect(reason.contains("ended while it started") && reason.contains("signal 9"))
        #expect(machine.state(of: Self.w) == nil && machine.deploysUnderWay == 0)
        // Its token is free for a new deploy.
        guard case .fetchArtifact(let again) = machine.deployRequested(nodeID: "N", lameDuck: false) else { return }
        let claimed = machine.claimToken("issuer.jti", for: again)
        #expect(claimed)
    }

    @Test func theNodeStoppingDuringARestartBackoffEndsIt() {
        var machine = Self.machine(in: "backoff")
        #expect(machine.nodeStopping() == [.stop(workload: Self.w, undeploy: nil)])
        #expect(machine.restartTimerFired(Self.w, lameDuck: false) == .none)
        guard case .refuse(let reason) = machine.deployRequested(nodeID: "N", lameDuck: false) else {
            Issue.record("a deploy reserved while the node stops"); return
        }
        #expect(reason.contains("stopping"))

        // An essential service that ends once the node stops is not restarted.
        var running = Self.machine(in: "running(A)")
        _ = running.nodeStopping()
        #expect(running.agentLost("A", code: 1, reason: "x", ranFor: .zero, lameDuck: false) == .none)
        // A reservation under way is refused at its next step.
        var reserving = Machine(limits: Self.unlimited)
        guard case .fetchArtifact(let id) = reserving.deployRequested(nodeID: "N", lameDuck: false) else { return }
        _ = reserving.nodeStopping()
        #expect(reserving.artifactFetched(id, bytes: 1, workloadName: "x") == .refuse("the node is stopping"))
    }

    @Test func lameDuckEndsARestartAndRefusesDeploys() {
        var machine = Self.machine(in: "backoff")
        guard case .end(_, nil, let reason, nil) = machine.restartTimerFired(Self.w, lameDuck: true) else {
            Issue.record("restarted in lame duck mode"); return
        }
        #expect(reason.contains("lame duck"))
        guard case .refuse(let refused) = machine.deployRequested(nodeID: "N", lameDuck: true) else { return }
        #expect(refused.contains("lame duck"))
    }

    @Test func essentialRestartsBackOffExponentiallyAndAHealthyRunResets() {
        var machine = Self.machine(in: "running(A)")
        var delays: [Duration] = []
        var agent = "A"
        for round in 1...4 {
            let action = machine.workloadExited(agent: agent, code: 2, reason: "crash", ranFor: .seconds(1), lameDuck: false)
            guard case .scheduleRestart(_, let released, let delay, let restarts, "crash", nil) = action,
                  released == agent, restarts == round
            else {
                Issue.record("round \(round): \(action)"); return
            }
            delays.append(delay)
            #expect(machine.restartTimerFired(Self.w, lameDuck: false) == .assignAgent(workload: Self.w))
            agent = "R\(round)"
            #expect(machine.agentAssigned(Self.w, agent: agent) == .sendDeploy(workload: Self.w, agent: agent))
            #expect(machine.agentAccepted(Self.w, agent: agent) == .restarted(workload: Self.w, agent: agent))
        }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(8)])
        let healthy = machine.agentLost(agent, code: 1, reason: "lost", ranFor: .seconds(61), lameDuck: false)
        guard case .scheduleRestart(_, _, let reset, 5, _, 1) = healthy, reset == .seconds(1) else {
            Issue.record("\(healthy)"); return
        }
        // A restart whose agent refuses backs off again instead of sticking.
        _ = machine.restartTimerFired(Self.w, lameDuck: false)
        _ = machine.agentAssigned(Self.w, agent: "R5")
        let refused = machine.agentRefused(Self.w, agent: "R5", reason: "no")
        guard case .scheduleRestart(_, "R5", let again, 6, _, nil) = refused, again == .seconds(2) else {
            Issue.record("refused restart did not back off: \(refused)"); return
        }
    }

    @Test func aServiceThatEndsCleanlyOrIsNotEssentialEnds() {
        var machine = Self.machine(in: "running(A)")
        #expect(machine.workloadExited(agent: "A", code: 0, reason: "done", ranFor: .seconds(3), lameDuck: false)
            == .end(workload: Self.w, releaseAgent: "A", reason: "done", publishUndeployed: nil))
        #expect(machine.liveCount == 0 && machine.state(of: Self.w) == .stopped)
        machine.cleanedUp(Self.w)
        #expect(machine.state(of: Self.w) == nil)

        var lost = Self.machine(in: "running(A)")
        #expect(lost.agentLost("A", code: 0, reason: "gone", ranFor: .seconds(3), lameDuck: true)
            == .end(workload: Self.w, releaseAgent: "A", reason: "gone", publishUndeployed: 0))
    }

    @Test func aFunctionRunsOnceItsTriggerIsSubscribed() {
        var machine = Machine(limits: Self.unlimited)
        guard case .fetchArtifact(let id) = machine.deployRequested(nodeID: "N", lameDuck: false) else { return }
        _ = machine.artifactFetched(id, bytes: 1, workloadName: "f")
        _ = machine.reservationCommitted(id, workload: "f", essential: false, isFunction: true)
        _ = machine.agentAssigned("f", agent: "A")
        #expect(machine.agentAccepted("f", agent: "A") == .startTrigger(workload: "f", agent: "A"))
        #expect(machine.state(of: "f") == .deploying(agent: "A"))
        #expect(machine.triggerStarted("f", agent: "A") == .replyStarted(workload: "f", agent: "A"))
        #expect(machine.state(of: "f") == .running(agent: "A"))
    }
}
