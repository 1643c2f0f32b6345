import Foundation
import NexControl
import Testing

@Suite struct WorkloadTypeTests {
    @Test func parsesNamesWithV8AsItsOwnType() {
        #expect(WorkloadType(name: "native") == .native)
        #expect(WorkloadType(name: "WASM") == .wasm)
        #expect(WorkloadType(name: "v8") == .v8)
        #expect(WorkloadType(name: "V8").map(\.isJavaScript) == true && WorkloadType.v8.isFunction)
        #expect(WorkloadType(name: "javascript") == .javascript)
        #expect(WorkloadType(name: "oci") == nil)
        #expect(WorkloadType(name: "") == nil)
        #expect(!WorkloadType.native.isFunction)
        #expect(WorkloadType.wasm.isFunction)
    }

    @Test func decodesAnyCaseAndEncodesItsName() throws {
        let decoded = try JSONDecoder().decode([WorkloadType].self, from: Data(#"["v8","WASM","native","JavaScript"]"#.utf8))
        #expect(decoded == [.v8, .wasm, .native, .javascript])
        #expect(String(decoding: try JSONEncoder().encode([WorkloadType.javascript, .v8]), as: UTF8.self) == #"["javascript","v8"]"#)
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
