import Testing
@testable import NexControl

@Suite struct NexSubjectTests {
    @Test func subjectsFollowNexTokenOrder() {
        #expect(NexSubject.ping() == "$NEX.PING")
        #expect(NexSubject.ping(node: "NABC") == "$NEX.PING.NABC")
        #expect(NexSubject.info(namespace: "default", node: "NABC") == "$NEX.INFO.default.NABC")
        #expect(NexSubject.deploy(namespace: "ns", node: "N1") == "$NEX.DEPLOY.ns.N1")
        #expect(NexSubject.stop(namespace: "ns", node: "N1") == "$NEX.STOP.ns.N1")
        #expect(NexSubject.lameDuck(node: "N1") == "$NEX.LAMEDUCK.N1")
        #expect(NexSubject.event(namespace: "system", type: .nodeStarted) == "$NEX.events.system.node_started")
        #expect(NexSubject.event(namespace: "*", type: nil) == "$NEX.events.*.*")
        #expect(NexSubject.logs(namespace: "ns", node: "N1", workloadName: "echo", workloadID: "w1")
            == "$NEX.logs.ns.N1.echo.w1")
    }
}
