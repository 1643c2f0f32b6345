import NIOCore
import Testing

@testable import NATSWire

/// The connection's lifecycle without a socket: every state against every event, then the
/// races (close during connect or backoff, errors while draining, late INFO, stale
/// connections, giving up, reconnecting while draining).
@Suite struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine

    static let info = ServerInfo(serverID: "S", version: "2.10.0")

    static func machine(
        _ urls: [String] = ["nats://a:4222", "nats://b:4222"], _ configure: (inout Machine.Configuration) -> Void = { _ in }
    ) -> Machine {
        var configuration = Machine.Configuration()
        configure(&configuration)
        return Machine(servers: urls.map { try! ServerAddress(parsing: $0) }, configuration: configuration)
    }

    // MARK: Getting to each state

    /// The states of the table, each with how to reach it and the id of its attempt or connection.
    static var states: [(name: String, id: Int, make: () -> Machine)] { [
        ("idle", 0, { machine() }),
        ("connecting(awaitingInfo)", 1, { var m = machine(); _ = m.connectRequested(); return m }),
        ("connecting(awaitingPong)", 1, {
            var m = machine()
            _ = m.connectRequested()
            _ = m.infoReceived(info, id: 1)
            return m
        }),
        ("connected", 1, { connected() }),
        ("reconnecting(waiting)", 1, { var m = connected(); _ = m.channelInactive(id: 1, error: nil); return m }),
        ("reconnecting(awaitingInfo)", 2, {
            var m = connected()
            _ = m.channelInactive(id: 1, error: nil)
            _ = m.reconnectTimerFired()
            return m
        }),
        ("draining(connected)", 1, { var m = connected(); _ = m.drainRequested(); return m }),
        ("draining(reconnecting(waiting))", 1, {
            var m = connected()
            _ = m.drainRequested()
            _ = m.channelInactive(id: 1, error: nil)
            return m
        }),
        ("closed", 1, { var m = connected(); _ = m.closeRequested(); return m }),
    ] }

    static func connected(_ m: Machine = machine()) -> Machine {
        var m = m
        _ = m.connectRequested()
        _ = m.channelActive(id: 1)
        _ = m.infoReceived(info, id: 1)
        _ = m.pongReceived(id: 1)
        return m
    }

    static var events: [(name: String, run: (inout Machine, Int) -> Machine.Action)] { [
        ("connect", { m, _ in m.connectRequested() }),
        ("channelActive", { m, id in m.channelActive(id: id) }),
        ("info", { m, id in m.infoReceived(info, id: id) }),
        ("pong", { m, id in m.pongReceived(id: id) }),
        ("-ERR permissions", { m, id in m.errorReceived("Permissions Violation for Publish to \"x\"", id: id) }),
        ("-ERR parser", { m, id in m.errorReceived("Parser Error", id: id) }),
        ("channelInactive", { m, id in m.channelInactive(id: id, error: nil) }),
        ("dialFailed", { m, id in m.dialFailed(id: id, error: .connectionFailed(servers: ["x"], reason: "refused")) }),
        ("reconnectTimer", { m, _ in m.reconnectTimerFired() }),
        ("pingTimer", { m, id in m.pingTimerFired(id: id) }),
        ("drain", { m, _ in m.drainRequested() }),
        ("drainCompleted", { m, _ in m.drainCompleted() }),
        ("close", { m, _ in m.closeRequested() }),
        ("info (stale id)", { m, id in m.infoReceived(info, id: id + 100) }),
    ] }

    /// state → event → "action -> next state". Read row by row: this is the machine's spec.
    static let expected: [String: [String: String]] = [
        "idle": [
            "connect": "dial(nats://a:4222 #1) -> connecting(awaitingInfo)",
            "channelActive": "closeChannel -> idle", "info": "none -> idle", "pong": "none -> idle",
            "-ERR permissions": "none -> idle", "-ERR parser": "none -> idle", "channelInactive": "none -> idle",
            "dialFailed": "none -> idle", "reconnectTimer": "none -> idle", "pingTimer": "none -> idle",
            "drain": "reject(connectionClosed) -> idle", "drainCompleted": "none -> idle",
            "close": "shutdown(nil) -> closed", "info (stale id)": "none -> idle",
        ],
        "connecting(awaitingInfo)": [
            "connect": "reject(unsupported) -> connecting(awaitingInfo)",
            "channelActive": "armHandshakeTimer -> connecting(awaitingInfo)",
            "info": "sendConnect -> connecting(awaitingPong)",
            "pong": "none -> connecting(awaitingInfo)",
            "-ERR permissions": "closeChannel -> connecting(awaitingInfo)",
            "-ERR parser": "closeChannel -> connecting(awaitingInfo)",
            "channelInactive": "dial(nats://b:4222 #2) -> connecting(awaitingInfo)",
            "dialFailed": "dial(nats://b:4222 #2) -> connecting(awaitingInfo)",
            "reconnectTimer": "none -> connecting(awaitingInfo)", "pingTimer": "none -> connecting(awaitingInfo)",
            "drain": "reject(connectionClosed) -> connecting(awaitingInfo)",
            "drainCompleted": "none -> connecting(awaitingInfo)",
            "close": "shutdown(nil) -> closed", "info (stale id)": "none -> connecting(awaitingInfo)",
        ],
        "connecting(awaitingPong)": [
            "connect": "reject(unsupported) -> connecting(awaitingPong)",
            "channelActive": "armHandshakeTimer -> connecting(awaitingPong)",
            "info": "none -> connecting(awaitingPong)",
            "pong": "activate(first) -> connected",
            "-ERR permissions": "closeChannel -> connecting(awaitingPong)",
            "-ERR parser": "closeChannel -> connecting(awaitingPong)",
            "channelInactive": "dial(nats://b:4222 #2) -> connecting(awaitingInfo)",
            "dialFailed": "dial(nats://b:4222 #2) -> connecting(awaitingInfo)",
            "reconnectTimer": "none -> connecting(awaitingPong)", "pingTimer": "none -> connecting(awaitingPong)",
            "drain": "reject(connectionClosed) -> connecting(awaitingPong)",
            "drainCompleted": "none -> connecting(awaitingPong)",
            "close": "shutdown(nil) -> closed", "info (stale id)": "none -> connecting(awaitingPong)",
        ],
        "connected": [
            "connect": "reject(unsupported) -> connected", "channelActive": "none -> connected",
            "info": "updateInfo -> connected", "pong": "completePing -> connected",
            "-ERR permissions": "reportError(permissionViolation) -> connected",
            "-ERR parser": "shutdown(serverError, report) -> closed",
            "channelInactive": "connectionLost(reconnect after 2000ms) -> reconnecting(waiting)",
            "dialFailed": "none -> connected", "reconnectTimer": "none -> connected",
            "pingTimer": "sendPing -> connected", "drain": "startDrain -> draining(connected)",
            "drainCompleted": "none -> connected", "close": "shutdown(nil) -> closed",
            "info (stale id)": "none -> connected",
        ],
        "reconnecting(waiting)": [
            "connect": "reject(unsupported) -> reconnecting(waiting)",
            "channelActive": "closeChannel -> reconnecting(waiting)", "info": "none -> reconnecting(waiting)",
            "pong": "none -> reconnecting(waiting)", "-ERR permissions": "none -> reconnecting(waiting)",
            "-ERR parser": "none -> reconnecting(waiting)", "channelInactive": "none -> reconnecting(waiting)",
            "dialFailed": "none -> reconnecting(waiting)",
            "reconnectTimer": "dial(nats://b:4222 #2) -> reconnecting(awaitingInfo)",
            "pingTimer": "none -> reconnecting(waiting)",
            "drain": "startDrain -> draining(reconnecting(waiting))", "drainCompleted": "none -> reconnecting(waiting)",
            "close": "shutdown(nil) -> closed", "info (stale id)": "none -> reconnecting(waiting)",
        ],
        "reconnecting(awaitingInfo)": [
            "connect": "reject(unsupported) -> reconnecting(awaitingInfo)",
            "channelActive": "armHandshakeTimer -> reconnecting(awaitingInfo)",
            "info": "sendConnect -> reconnecting(awaitingPong)", "pong": "none -> reconnecting(awaitingInfo)",
            "-ERR permissions": "closeChannel -> reconnecting(awaitingInfo)",
            "-ERR parser": "closeChannel -> reconnecting(awaitingInfo)",
            "channelInactive": "dial(nats://a:4222 #3) -> reconnecting(awaitingInfo)",
            "dialFailed": "dial(nats://a:4222 #3) -> reconnecting(awaitingInfo)",
            "reconnectTimer": "none -> reconnecting(awaitingInfo)",
            "pingTimer": "none -> reconnecting(awaitingInfo)",
            "drain": "startDrain -> draining(reconnecting(awaitingInfo))",
            "drainCompleted": "none -> reconnecting(awaitingInfo)",
            "close": "shutdown(nil) -> closed", "info (stale id)": "none -> reconnecting(awaitingInfo)",
        ],
        "draining(connected)": [
            "connect": "reject(unsupported) -> draining(connected)",
            "channelActive": "none -> draining(connected)", "info": "updateInfo -> draining(connected)",
            "pong": "completePing -> draining(connected)",
            "-ERR permissions": "reportError(permissionViolation) -> draining(connected)",
            "-ERR parser": "shutdown(serverError, report) -> closed",
            "channelInactive": "connectionLost(reconnect after 2000ms) -> draining(reconnecting(waiting))",
            "dialFailed": "none -> draining(connected)", "reconnectTimer": "none -> draining(connected)",
            "pingTimer": "sendPing -> draining(connected)",
            "drain": "reject(connectionClosed) -> draining(connected)",
            "drainCompleted": "shutdown(nil) -> closed", "close": "shutdown(nil) -> closed",
            "info (stale id)": "none -> draining(connected)",
        ],
        "draining(reconnecting(waiting))": [
            "connect": "reject(unsupported) -> draining(reconnecting(waiting))",
            "channelActive": "closeChannel -> draining(reconnecting(waiting))",
            "info": "none -> draining(reconnecting(waiting))", "pong": "none -> draining(reconnecting(waiting))",
            "-ERR permissions": "none -> draining(reconnecting(waiting))",
            "-ERR parser": "none -> draining(reconnecting(waiting))",
            "channelInactive": "none -> draining(reconnecting(waiting))",
            "dialFailed": "none -> draining(reconnecting(waiting))",
            "reconnectTimer": "dial(nats://b:4222 #2) -> draining(reconnecting(awaitingInfo))",
            "pingTimer": "none -> draining(reconnecting(waiting))",
            "drain": "reject(connectionClosed) -> draining(reconnecting(waiting))",
            "drainCompleted": "shutdown(nil) -> closed", "close": "shutdown(nil) -> closed",
            "info (stale id)": "none -> draining(reconnecting(waiting))",
        ],
        "closed": [
            "connect": "reject(connectionClosed) -> closed", "channelActive": "closeChannel -> closed",
            "info": "closeChannel -> closed", "pong": "none -> closed", "-ERR permissions": "none -> closed",
            "-ERR parser": "none -> closed", "channelInactive": "none -> closed", "dialFailed": "none -> closed",
            "reconnectTimer": "none -> closed", "pingTimer": "none -> closed",
            "drain": "reject(connectionClosed) -> closed", "drainCompleted": "none -> closed",
            "close": "none -> closed", "info (stale id)": "closeChannel -> closed",
        ],
    ]

    @Test func everyStateAgainstEveryEvent() {
        for state in Self.states {
            #expect(Self.summary(state.make().state) == state.name, "reaching \(state.name)")
            for event in Self.events {
                var m = state.make()
                let action = event.run(&m, state.id)
                let actual = "\(Self.summary(action)) -> \(Self.summary(m.state))"
                #expect(actual == Self.expected[state.name]?[event.name], "\(state.name) + \(event.name)")
            }
        }
    }

    // MARK: The handshake

    @Test func tlsIsStartedAfterInfoAndConnectWaitsForIt() {
        var m = Self.machine(["tls://a:4222"])
        _ = m.connectRequested()
        #expect(Self.summary(m.infoReceived(ServerInfo(serverID: "S", version: "2", tlsAvailable: true), id: 1)) == "startTLS")
        #expect(Self.summary(m.state) == "connecting(tlsHandshake)")
        #expect(Self.summary(m.pongReceived(id: 1)) == "none")
        #expect(Self.summary(m.tlsEstablished(id: 1)) == "sendConnect")
        #expect(Self.summary(m.pongReceived(id: 1)) == "activate(first)")
    }

    @Test func serverRequiringTLSGetsItEvenIfNotAskedFor() {
        var m = Self.machine(["nats://a:4222"])
        _ = m.connectRequested()
        #expect(Self.summary(m.infoReceived(ServerInfo(serverID: "S", version: "2", tlsRequired: true), id: 1)) == "startTLS")
    }

    @Test func tlsWantedFromAServerWithoutItNeverFallsBackToClearText() {
        var m = Self.machine(["tls://a:4222"])
        _ = m.connectRequested()
        #expect(Self.summary(m.infoReceived(Self.info, id: 1)) == "closeChannel")
        guard case .failConnect(let error) = m.channelInactive(id: 1, error: nil), case .tlsFailed(let server, _) = error.detail else {
            Issue.record("expected failConnect(tlsFailed)")
            return
        }
        #expect(server == "tls://a:4222")
    }

    @Test func tlsFirstSendsConnectRightAfterInfo() {
        var m = Self.machine(["tls://a:4222"]) { $0.tlsConfigured = true; $0.tlsFirst = true }
        _ = m.connectRequested()
        #expect(Self.summary(m.infoReceived(Self.info, id: 1)) == "sendConnect")
    }

    @Test func refusedCredentialsStopTheFirstConnectAtOnce() {
        var m = Self.machine()
        _ = m.connectRequested()
        _ = m.infoReceived(Self.info, id: 1)
        #expect(Self.summary(m.errorReceived("Authorization Violation", id: 1)) == "closeChannel")
        guard case .failConnect(let error) = m.channelInactive(id: 1, error: nil),
              case .authorizationFailed(let server, _) = error.detail
        else {
            Issue.record("expected failConnect(authorizationFailed), the second server is not tried")
            return
        }
        #expect(server == "nats://a:4222")
        #expect(Self.summary(m.state) == "closed")
    }

    @Test func firstConnectFailsNamingEveryServerWhenAllFail() {
        var m = Self.machine()
        #expect(Self.summary(m.connectRequested()) == "dial(nats://a:4222 #1)")
        #expect(Self.summary(m.dialFailed(id: 1, error: .connectionFailed(servers: ["nats://a:4222"], reason: "refused")))
            == "dial(nats://b:4222 #2)")
        _ = m.channelActive(id: 2)
        let timeout = NATSError.timeout(operation: "handshake with the server", seconds: 5)
        guard case .failConnect(let error) = m.channelInactive(id: 2, error: timeout),
              case .connectionFailed(let servers, let reason) = error.detail
        else {
            Issue.record("expected failConnect(connectionFailed)")
            return
        }
        #expect(servers == ["nats://a:4222", "nats://b:4222"])
        #expect(reason.contains("timed out") || reason.contains("handshake"))
    }

    @Test func oneServerFailsWithItsOwnError() {
        var m = Self.machine(["nats://a:4222"])
        _ = m.connectRequested()
        let refused = NATSError.connectionFailed(servers: ["nats://a:4222"], reason: "Connection refused")
        guard case .failConnect(let error) = m.dialFailed(id: 1, error: refused) else {
            Issue.record("expected failConnect")
            return
        }
        #expect(error == refused)
    }

    // MARK: Races

    @Test func closeDuringConnectLeavesTheAttemptNothingToDo() {
        var m = Self.machine()
        _ = m.connectRequested()
        #expect(Self.summary(m.closeRequested()) == "shutdown(nil)")
        // The TCP connection comes up after close(): it is closed, and nothing else happens.
        #expect(Self.summary(m.channelActive(id: 1)) == "closeChannel")
        #expect(Self.summary(m.infoReceived(Self.info, id: 1)) == "closeChannel")
        #expect(Self.summary(m.pongReceived(id: 1)) == "none")
        #expect(Self.summary(m.channelInactive(id: 1, error: nil)) == "none")
        #expect(Self.summary(m.dialFailed(id: 1, error: .connectionClosed)) == "none")
        #expect(Self.summary(m.closeRequested()) == "none")
        #expect(m.lifecycle == .closed)
    }

    @Test func closeDuringReconnectBackoffCancelsTheRound() {
        var m = Self.connected()
        #expect(Self.summary(m.channelInactive(id: 1, error: nil)) == "connectionLost(reconnect after 2000ms)")
        #expect(Self.summary(m.closeRequested()) == "shutdown(nil)")
        #expect(Self.summary(m.reconnectTimerFired()) == "none")
        #expect(Self.summary(m.state) == "closed")
    }

    @Test func closeDuringAReconnectAttempt() {
        var m = Self.connected()
        _ = m.channelInactive(id: 1, error: nil)
        _ = m.reconnectTimerFired()
        _ = m.closeRequested()
        #expect(Self.summary(m.channelActive(id: 2)) == "closeChannel")
        #expect(Self.summary(m.channelInactive(id: 2, error: nil)) == "none")
    }

    @Test func serverErrorsDuringDrain() {
        // A fatal one closes the client, drain or not.
        var fatal = Self.connected()
        _ = fatal.drainRequested()
        guard case .shutdown(.serverError("Maximum Payload Violation"), report: true) =
            fatal.errorReceived("Maximum Payload Violation", id: 1)
        else {
            Issue.record("expected shutdown(serverError)")
            return
        }
        #expect(fatal.lifecycle == .closed)
        #expect(Self.summary(fatal.drainCompleted()) == "none")

        // One the server drops us after: the drain goes on over the reconnect.
        var dropped = Self.connected()
        _ = dropped.drainRequested()
        #expect(Self.summary(dropped.errorReceived("Slow Consumer", id: 1)) == "reportError(serverError)")
        guard case .connectionLost(reason: .serverError("Slow Consumer"), then: .reconnect) =
            dropped.channelInactive(id: 1, error: nil)
        else {
            Issue.record("expected connectionLost(serverError) then reconnect")
            return
        }
        #expect(dropped.lifecycle == .draining)
        _ = dropped.reconnectTimerFired()
        _ = dropped.infoReceived(Self.info, id: 2)
        #expect(Self.summary(dropped.pongReceived(id: 2)) == "activate(reconnected)")
        #expect(Self.summary(dropped.state) == "draining(connected)")
        #expect(Self.summary(dropped.drainCompleted()) == "shutdown(nil)")
    }

    @Test func authorizationErrorAfterTheHandshakeClosesNamingTheServer() {
        var m = Self.connected()
        guard case .shutdown(let error?, report: true) = m.errorReceived("Authorization Violation", id: 1),
              case .authorizationFailed(let server, _) = error.detail
        else {
            Issue.record("expected shutdown(authorizationFailed)")
            return
        }
        #expect(server == "nats://a:4222")
    }

    @Test func infoAfterCloseOnlyClosesItsChannel() {
        var m = Self.connected()
        _ = m.closeRequested()
        #expect(Self.summary(m.infoReceived(Self.info, id: 1)) == "closeChannel")
        #expect(m.servers.count == 2)
    }

    @Test func unansweredPingsMakeTheConnectionStale() {
        var m = Self.connected()  // maxPingsOutstanding 2
        #expect(Self.summary(m.pingTimerFired(id: 1)) == "sendPing")
        #expect(Self.summary(m.pingTimerFired(id: 1)) == "sendPing")
        #expect(Self.summary(m.pongReceived(id: 1)) == "completePing")  // an answer resets the count
        #expect(Self.summary(m.pingTimerFired(id: 1)) == "sendPing")
        #expect(Self.summary(m.pingTimerFired(id: 1)) == "sendPing")
        guard case .closeChannel(report: .staleConnection) = m.pingTimerFired(id: 1) else {
            Issue.record("expected closeChannel(staleConnection)")
            return
        }
        guard case .connectionLost(reason: .staleConnection, then: .reconnect) = m.channelInactive(id: 1, error: nil) else {
            Issue.record("expected connectionLost(staleConnection) then reconnect")
            return
        }
    }

    @Test func givesUpAfterMaxReconnectAttemptsRounds() {
        var m = Self.connected(Self.machine { $0.maxReconnectAttempts = 2 })
        #expect(Self.summary(m.channelInactive(id: 1, error: nil)) == "connectionLost(reconnect after 2000ms)")
        // Round 1: b (after the lost a), then a.
        #expect(Self.summary(m.reconnectTimerFired()) == "dial(nats://b:4222 #2)")
        #expect(Self.summary(m.dialFailed(id: 2, error: .connectionFailed(servers: ["b"], reason: "refused")))
            == "dial(nats://a:4222 #3)")
        #expect(Self.summary(m.channelInactive(id: 3, error: nil)) == "scheduleReconnect(4000ms)")
        // Round 2, the last.
        #expect(Self.summary(m.reconnectTimerFired()) == "dial(nats://b:4222 #4)")
        _ = m.dialFailed(id: 4, error: .connectionFailed(servers: ["b"], reason: "refused"))
        guard case .shutdown(let error?, report: false) =
            m.dialFailed(id: 5, error: .connectionFailed(servers: ["nats://a:4222"], reason: "refused")),
            case .connectionFailed(let servers, let reason) = error.detail
        else {
            Issue.record("expected shutdown(connectionFailed)")
            return
        }
        #expect(servers == ["nats://a:4222", "nats://b:4222"])
        #expect(reason.hasPrefix("gave up after 2 reconnect rounds"))
        #expect(m.lifecycle == .closed)
    }

    @Test func noReconnectRoundsMeansGivingUpAtOnce() {
        var m = Self.connected(Self.machine { $0.maxReconnectAttempts = 0 })
        guard case .connectionLost(reason: nil, then: .giveUp(.connectionFailed)) = m.channelInactive(id: 1, error: nil) else {
            Issue.record("expected connectionLost then giveUp")
            return
        }
        #expect(m.lifecycle == .closed)
    }

    @Test func reconnectNotAllowedClosesWithTheReason() {
        var m = Self.connected(Self.machine { $0.allowReconnect = false })
        let reason = NATSError.protocolViolation(NATSProtocolError(.unknownOperation, offending: "XYZ"))
        guard case .connectionLost(reason: .some(reason), then: .close) = m.channelInactive(id: 1, error: reason) else {
            Issue.record("expected connectionLost then close")
            return
        }
        guard case .closed(.some(reason)) = m.state else {
            Issue.record("expected closed(\(reason))")
            return
        }
    }

    @Test func reconnectSucceedsAndActivatesWithBufferedWorkStillPending() {
        // The machine reports "reconnected"; activation (the client) re-sends subscriptions
        // ahead of the publishes buffered meanwhile (ReconnectClientTests checks the bytes).
        var m = Self.connected()
        _ = m.channelInactive(id: 1, error: .serverError("Stale Connection"))
        #expect(m.lifecycle == .running)  // publishes are buffered, not refused
        _ = m.reconnectTimerFired()
        #expect(Self.summary(m.channelActive(id: 2)) == "armHandshakeTimer")
        #expect(Self.summary(m.infoReceived(Self.info, id: 2)) == "sendConnect")
        guard case .activate(_, let server, id: 2, reconnected: true, let discovered) = m.pongReceived(id: 2) else {
            Issue.record("expected activate(reconnected)")
            return
        }
        #expect(discovered.isEmpty)
        #expect(server.description == "nats://b:4222")
        #expect(m.connectedServer?.description == "nats://b:4222")
        // The next loss starts again from round 0, after b.
        #expect(Self.summary(m.channelInactive(id: 2, error: nil)) == "connectionLost(reconnect after 2000ms)")
        #expect(Self.summary(m.reconnectTimerFired()) == "dial(nats://a:4222 #3)")
    }

    @Test func eventsOfAnAbandonedAttemptAreIgnored() {
        var m = Self.machine()
        _ = m.connectRequested()
        _ = m.dialFailed(id: 1, error: .connectionFailed(servers: ["a"], reason: "refused"))  // now #2
        #expect(Self.summary(m.infoReceived(Self.info, id: 1)) == "none")
        #expect(Self.summary(m.pongReceived(id: 1)) == "none")
        #expect(Self.summary(m.channelInactive(id: 1, error: nil)) == "none")
        #expect(Self.summary(m.state) == "connecting(awaitingInfo)")
        #expect(m.currentID == 2)
    }

    @Test func learnedServersJoinTheReconnectOrderWithTheOriginsCredentials() {
        var m = Self.connected(Self.machine(["nats://u:p@a:4222"]))
        let update = ServerInfo(serverID: "S", version: "2", connectURLs: ["c:4222", "a:4222"])
        guard case .updateInfo(_, _, discovered: let added) = m.infoReceived(update, id: 1) else {
            Issue.record("expected updateInfo")
            return
        }
        #expect(added == ["nats://c:4222"])
        #expect(m.servers.last?.user == "u")
        _ = m.channelInactive(id: 1, error: nil)
        #expect(Self.summary(m.reconnectTimerFired()) == "dial(nats://c:4222 #2)")
    }

    @Test func backoffDoublesUpToTheMaximum() {
        let m = Self.machine { $0.reconnectWait = .milliseconds(100); $0.maxReconnectWait = .seconds(1) }
        #expect((0...5).map { m.backoff(afterRounds: $0).nanoseconds / 1_000_000 } == [100, 200, 400, 800, 1000, 1000])
        #expect(m.backoff(afterRounds: 10_000) == .seconds(1))
    }

    // MARK: Summaries

    static func summary(_ state: Machine.State) -> String {
        func attempt(_ a: Machine.Attempt) -> String {
            switch a.handshake {
            case .awaitingInfo: "awaitingInfo"
            case .tlsHandshake: "tlsHandshake"
            case .awaitingPong: "awaitingPong"
            }
        }
        func reconnect(_ r: Machine.Reconnect) -> String {
            "reconnecting(\(r.attempt.map(attempt) ?? "waiting"))"
        }
        switch state {
        case .idle: return "idle"
        case .connecting(let a): return "connecting(\(attempt(a)))"
        case .connected: return "connected"
        case .reconnecting(let r): return reconnect(r)
        case .draining(.connected): return "draining(connected)"
        case .draining(.reconnecting(let r)): return "draining(\(reconnect(r)))"
        case .closed: return "closed"
        }
    }

    static func summary(_ action: Machine.Action) -> String {
        func kind(_ error: NATSError) -> String {
            switch error.code {
            case .permissionViolation, .serverError, .connectionClosed, .unsupported, .staleConnection,
                 .authorizationFailed, .connectionFailed, .tlsFailed:
                error.code.description
            default: "\(error)"
            }
        }
        switch action {
        case .none: return "none"
        case .dial(let server, let id): return "dial(\(server) #\(id))"
        case .armHandshakeTimer: return "armHandshakeTimer"
        case .startTLS: return "startTLS"
        case .sendConnect: return "sendConnect"
        case .activate(_, _, _, let reconnected, _): return reconnected ? "activate(reconnected)" : "activate(first)"
        case .updateInfo: return "updateInfo"
        case .completePing: return "completePing"
        case .sendPing: return "sendPing"
        case .reportError(let error): return "reportError(\(kind(error)))"
        case .closeChannel: return "closeChannel"
        case .connectionLost(_, .reconnect(let wait)): return "connectionLost(reconnect after \(wait.nanoseconds / 1_000_000)ms)"
        case .connectionLost(_, .close): return "connectionLost(close)"
        case .connectionLost(_, .giveUp): return "connectionLost(giveUp)"
        case .scheduleReconnect(let wait): return "scheduleReconnect(\(wait.nanoseconds / 1_000_000)ms)"
        case .failConnect(let error): return "failConnect(\(kind(error)))"
        case .shutdown(let error, let report): return "shutdown(\(error.map(kind) ?? "nil")\(report ? ", report" : ""))"
        case .startDrain: return "startDrain"
        case .reject(let error): return "reject(\(kind(error)))"
        }
    }
}
