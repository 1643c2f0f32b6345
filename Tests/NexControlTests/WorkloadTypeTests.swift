import Foundation
import NexControl
import Testing

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

    @Test func decodesAliasesAndEncodesItsName() throws {
        let decoded = try JSONDecoder().decode([WorkloadType].self, from: Data(#"["v8","WASM","native"]"#.utf8))
        #expect(decoded == [.javascript, .wasm, .native])
        #expect(String(decoding: try JSONEncoder().encode([WorkloadType.javascript]), as: UTF8.self) == #"["javascript"]"#)
    }

    @Test func anUnknownTypeIsAnErrorThatNamesIt() {
        do {
            _ = try JSONDecoder().decode([WorkloadType].self, from: Data(#"["oci"]"#.utf8))
            Issue.record("an unknown type decoded")
        } catch {
            #expect("\(error)".contains("unknown workload type 'oci'"))
        }
    }
}
