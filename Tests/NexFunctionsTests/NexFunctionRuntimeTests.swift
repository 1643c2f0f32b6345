import NexFunctions
import NexWorkloads
import Testing

@Suite struct NexFunctionRuntimeTests {
    @Test func theRuntimeExists() {
        _ = NexFunctionRuntime()
    }
}
