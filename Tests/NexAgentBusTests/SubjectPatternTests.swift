import NexAgentBus
import Testing

@Suite struct SubjectPatternTests {
    @Test func publishSubjectsHaveNoWildcardsOrEmptyTokens() {
        for good in ["a", "hostint.a1.logs", "_INBOX.a1.x.y", "a-b_c.D9"] {
            #expect(SubjectPattern.isValidPublishSubject(good), "\(good)")
        }
        for bad in ["", ".", "a.", ".a", "a..b", "a.*", "a.>", "a b", "a\tb", "a\r\nb", "*", ">", "a.b*"] {
            #expect(!SubjectPattern.isValidPublishSubject(bad), "\(bad)")
        }
    }

    @Test func patternsAllowWholeTokenWildcardsWithFullWildcardLast() {
        for good in ["a.*", "a.>", ">", "*", "*.b.*", "agentint.a1.>"] {
            #expect(SubjectPattern.isValidPattern(good), "\(good)")
        }
        for bad in ["a.>.b", "a*", "a.b>", ">.a", "", "a..*", "a.* ", "a.>>"] {
            #expect(!SubjectPattern.isValidPattern(bad), "\(bad)")
        }
    }

    @Test func matching() {
        #expect(SubjectPattern.matches("a.>", "a.b"))
        #expect(SubjectPattern.matches("a.>", "a.b.c"))
        #expect(!SubjectPattern.matches("a.>", "a"))
        #expect(SubjectPattern.matches("a.*.c", "a.b.c"))
        #expect(!SubjectPattern.matches("a.*.c", "a.b.d"))
        #expect(!SubjectPattern.matches("a.*", "a.b.c"))
        #expect(SubjectPattern.matches(">", "x"))
        #expect(SubjectPattern.matches("hostint.*.logs", "hostint.a1.logs"))
        #expect(!SubjectPattern.matches("hostint.a1.>", "hostint.a10.logs"))
        #expect(!SubjectPattern.matches("abc", "ab"))
        #expect(!SubjectPattern.matches("ab", "abc"))
    }

    @Test func containmentForSubscriptionPermissions() {
        #expect(SubjectPattern.contains("agentint.a1.>", "agentint.a1.deploy"))
        #expect(SubjectPattern.contains("agentint.a1.>", "agentint.a1.*"))
        #expect(SubjectPattern.contains("agentint.a1.>", "agentint.a1.>"))
        #expect(!SubjectPattern.contains("agentint.a1.>", "agentint.>"))
        #expect(!SubjectPattern.contains("agentint.a1.>", "agentint.*.deploy"))
        #expect(!SubjectPattern.contains("agentint.a1.>", ">"))
        #expect(!SubjectPattern.contains("agentint.a1.>", "agentint.a1"))
        #expect(SubjectPattern.contains("a.*", "a.b"))
        #expect(!SubjectPattern.contains("a.*", "a.>"))
    }
}
