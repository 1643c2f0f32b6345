import Testing
@testable import NexAgentBus

@Suite struct AgentBusSubjectTests {
    @Test func agentSubjectsAreScopedToTheAgentID() {
        #expect(AgentBusSubject.toAgent("a1", "deploy") == "agentint.a1.deploy")
        #expect(AgentBusSubject.toHost("a1", "logs") == "hostint.a1.logs")
        #expect(AgentBusSubject.agentSubscription("a1") == "agentint.a1.>")
        #expect(AgentBusSubject.agentPublishSpace("a1") == "hostint.a1.>")
    }
}
