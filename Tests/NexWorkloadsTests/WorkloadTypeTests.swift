import Testing
@testable import NexWorkloads

@Suite struct WorkloadTypeTests {
    @Test func parsesNamesAndTheV8Alias() {
        #expect(WorkloadType(name: "native") == .native)
        #expect(WorkloadType(name: "WASM") == .wasm)
        #expect(WorkloadType(name: "v8") == .javascript)
        #expect(WorkloadType(name: "javascript") == .javascript)
        #expect(WorkloadType(name: "oci") == nil)
        #expect(WorkloadType(name: "") == nil)
        #expect(!WorkloadType.native.isFunction)
        #expect(WorkloadType.wasm.isFunction)
    }
}
