import Foundation
import NATSTestSupport
@testable import NexFunctions
import Testing
import WasmKit

private typealias Kit = WasmTestKit

/// A worker keeps one instance of a function between calls and puts it back after each
/// (memory, mutable globals, tables), or makes a fresh one when it cannot. Each test changes
/// one kind of state in a call and checks that the next call does not see it.
@Suite(.enabled(if: WasmTestKit.available, WasmTestKit.skipReason))
struct WasmWarmInstanceTests {
    /// Calls `function` `times` times on one worker; every answer must be `expected`.
    func expectEveryCall(_ function: WasmFunction, _ expected: String, times: Int = 4,
                         sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for call in 0..<times {
            let reply = String(decoding: try await function.invoke(subject: "s", payload: []), as: UTF8.self)
            #expect(reply == expected, "call \(call)", sourceLocation: sourceLocation)
        }
    }

    @Test func mutableGlobalsAndMemoryAreExportedForResetAndTheModuleIsUnchanged() throws {
        let directory = try TemporaryDirectory(prefix: "wasm-reset-")
        let path = try Kit.build("""
            (module
              (global $a (mut i32) (i32.const 7))
              (global $b i32 (i32.const 1))
              (global $c (mut i64) (i64.const -1))
              (memory (export "memory") 1)
              (func (export "_start")))
            """, named: "globals", in: directory)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let prepared = try #require(WasmResetExports.prepare(bytes))
        #expect(prepared.plan.globals == [WasmResetExports.globalExportName(0), WasmResetExports.globalExportName(2)])
        #expect(prepared.plan.tables.isEmpty)
        let module = try parseWasm(bytes: prepared.bytes)
        #expect(module.exports.map(\.name).sorted() == ["_start", "memory", "nex:reset:global:0", "nex:reset:global:2"])
    }

    @Test func modulesWhoseStateCannotBePutBackAreNotPrepared() throws {
        let directory = try TemporaryDirectory(prefix: "wasm-noreset-")
        let cases = [
            "growable table": #"(module (table 1 funcref) (memory (export "memory") 1) (func (export "_start")))"#,
            "start function": #"(module (memory (export "memory") 1) (func $s) (start $s) (func (export "_start")))"#,
            "passive data": #"(module (memory (export "memory") 1) (data "x") (func (export "_start") (data.drop 0)))"#,
        ]
        for (name, wat) in cases {
            let path = try Kit.build(wat, named: name.replacingOccurrences(of: " ", with: "-"), in: directory)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(WasmResetExports.prepare(bytes) == nil, "\(name)")
        }
    }

    @Test func memoryGrownInACallIsGoneInTheNext() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-grow-")
        let function = try await Kit.function("""
            (module
              \(Kit.fdWriteImport)
              \(Kit.helpers)
              (func (export "_start")
                (call $write_int (i32.const 1) (memory.size))
                (drop (memory.grow (i32.const 1)))))
            """, named: "grow", in: directory, workers: 1)
        try await expectEveryCall(function, "1")
    }

    @Test func aTableChangedInACallIsPutBack() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-table-")
        let function = try await Kit.function("""
            (module
              \(Kit.fdWriteImport)
              \(Kit.helpers)
              (type $t (func (result i32)))
              (table 2 2 funcref)
              (elem (i32.const 0) $one $two)
              (func $one (result i32) (i32.const 1))
              (func $two (result i32) (i32.const 2))
              (func (export "_start")
                (call $write_int (i32.const 1) (call_indirect (type $t) (i32.const 0)))
                (table.set 0 (i32.const 0) (ref.func $two))))
            """, named: "table", in: directory, workers: 1)
        try await expectEveryCall(function, "1")
    }

    @Test func aCallThatTrapsAfterChangingStateLeavesNothingBehind() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-trap-")
        // Counts in a global and in memory, then traps when the payload's first byte is set.
        let function = try await Kit.function("""
            (module
              \(Kit.fdWriteImport)
              \(Kit.fdReadImport)
              \(Kit.helpers)
              \(Kit.firstByte)
              (global $calls (mut i32) (i32.const 0))
              (func (export "_start")
                (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
                (i32.store8 (i32.const 500) (i32.add (i32.load8_u (i32.const 500)) (i32.const 1)))
                (if (call $first_byte) (then (unreachable)))
                (call $write_int (i32.const 1) (i32.add (global.get $calls) (i32.load8_u (i32.const 500))))))
            """, named: "trap", in: directory, workers: 1)
        for payload: [UInt8] in [[1], [], [1], [1], [], []] {
            do {
                let reply = String(decoding: try await function.invoke(subject: "s", payload: payload), as: UTF8.self)
                #expect(payload.isEmpty && reply == "2", "payload \(payload): \(reply)")
            } catch {
                #expect(!payload.isEmpty && error.message.contains("unreachable"), "\(error.message)")
            }
        }
    }

    /// The WASI bridge (descriptors, arguments) is kept between calls only while they leave it
    /// as they found it: a call that closes its stdout does not close the next call's.
    @Test func aDescriptorClosedInACallIsOpenInTheNext() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-fd-close-")
        let function = try await Kit.function("""
            (module
              \(Kit.fdWriteImport)
              (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
              \(Kit.helpers)
              (func (export "_start")
                (call $write_int (i32.const 1) (i32.const 7))
                (drop (call $fd_close (i32.const 1)))
                (drop (call $fd_close (i32.const 2)))))
            """, named: "fd-close", in: directory, workers: 1)
        try await expectEveryCall(function, "7")
    }

    /// A kept bridge is one made for the call's subject (its argv[1]): a, b, then a again.
    @Test func aKeptBridgeFollowsTheSubject() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-argv-")
        let function = try await Kit.function("""
            (module
              \(Kit.fdWriteImport)
              (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
              \(Kit.helpers)
              (func (export "_start")
                (drop (call $args_sizes_get (i32.const 64) (i32.const 68)))
                (drop (call $args_get (i32.const 1024) (i32.const 4096)))
                (call $write (i32.const 1) (i32.load (i32.const 1028))
                  (i32.sub (i32.add (i32.const 4096) (i32.load (i32.const 68))) (i32.add (i32.load (i32.const 1028)) (i32.const 1))))))
            """, named: "argv", in: directory, workers: 1)
        for subject in ["orders.a", "orders.a", "orders.b", "orders.a", "x"] {
            let reply = try await function.invoke(subject: subject, payload: [])
            #expect(String(decoding: reply, as: UTF8.self) == subject)
        }
    }

    @Test func eachCallSeesItsOwnArgumentsAndInput() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-args-")
        let echo = try await Kit.load(try Kit.echoPath(in: directory), workers: 1)
        for index in 0..<5 {
            let payload = Array("payload \(index)".utf8)
            #expect(try await echo.invoke(subject: "s\(index)", payload: payload) == payload)
        }
    }
}
