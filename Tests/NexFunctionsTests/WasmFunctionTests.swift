import Foundation
import NATSTestSupport
import NexFunctions
import NexAgentKit
import NexAgentBus
import NexWorkloads
import NexControl
import Synchronization
import Testing

/// Builds wasm modules from WAT text with `wat2wasm` (Debian's wabt) at test time, and loads
/// them as functions.
enum WasmTestKit {
    static let wat2wasm: String? = {
        let candidates = [ProcessInfo.processInfo.environment["WAT2WASM"], "/usr/bin/wat2wasm", "/usr/local/bin/wat2wasm"]
        return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static var available: Bool { wat2wasm != nil }
    static let skipReason: Comment = "wat2wasm (Debian package wabt) is not installed: the wasm tests build their modules with it"

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The repository root (for `examples/functions`).
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Compiles `wat` (text) to a `.wasm` file in `directory`; returns its path.
    static func build(_ wat: String, named name: String, in directory: TemporaryDirectory, extraFlags: [String] = []) throws -> String {
        let source = try directory.write(wat, to: "\(name).wat")
        return try compile(source, to: directory.appending("\(name).wasm"), extraFlags: extraFlags)
    }

    /// Compiles the `.wat` file at `source` to `output` with wat2wasm.
    static func compile(_ source: String, to output: String, extraFlags: [String] = []) throws -> String {
        guard let wat2wasm else { throw Failure(description: "wat2wasm is not installed") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: wat2wasm)
        process.arguments = extraFlags + [source, "-o", output]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "wat2wasm \(source) failed: \(String(decoding: message, as: UTF8.self))")
        }
        return output
    }

    /// Loads the module at `path` as a wasm function.
    static func load(
        _ path: String, name: String = "test-fn", environment: [String: String] = [:],
        limits: FunctionLimits = FunctionLimits(), hostServices: any HostServiceCaller = NoHostServices(),
        workers: Int? = nil
    ) async throws(FunctionError) -> WasmFunction {
        let definition = FunctionDefinition(
            type: .wasm, workloadName: name, namespace: "default", artifactPath: path, environment: environment,
            limits: limits)
        return try await WasmFunction.load(definition, hostServices: hostServices, workers: workers)
    }

    /// Builds and loads `wat`.
    static func function(
        _ wat: String, named name: String = "test-fn", in directory: TemporaryDirectory,
        environment: [String: String] = [:], limits: FunctionLimits = FunctionLimits(),
        hostServices: any HostServiceCaller = NoHostServices(), workers: Int? = nil
    ) async throws -> WasmFunction {
        let path = try build(wat, named: name, in: directory)
        return try await load(path, name: name, environment: environment, limits: limits, hostServices: hostServices, workers: workers)
    }

    /// The error an invocation failed with, or a test failure if it succeeded.
    static func failure(
        of function: WasmFunction, subject: String = "test.subject", payload: [UInt8] = []
    ) async -> FunctionError? {
        do {
            let reply = try await function.invoke(subject: subject, payload: payload)
            Issue.record("the invocation should have failed, but replied \(String(decoding: reply, as: UTF8.self))")
            return nil
        } catch {
            return error
        }
    }

    static func limits(timeout: Duration = .seconds(5), memory: Int = 64 * 1024 * 1024) -> FunctionLimits {
        var limits = FunctionLimits()
        limits.timeout = timeout
        limits.wasmMemoryBytes = memory
        return limits
    }

    // MARK: - WAT building blocks

    static let fdWriteImport = #"""
        (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
        """#
    static let fdReadImport = #"""
        (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
        """#
    static let procExitImport = #"""
        (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
        """#

    /// One page of memory; `$write fd ptr len`, `$write_int fd value` (decimal) and
    /// `$first_byte` (of stdin, 0 if empty; needs fd_read). Bytes 0..63 are their scratch.
    static let helpers = #"""
        (memory (export "memory") 1)
        (func $write (param $fd i32) (param $ptr i32) (param $len i32)
          (i32.store (i32.const 0) (local.get $ptr))
          (i32.store (i32.const 4) (local.get $len))
          (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
        (func $write_int (param $fd i32) (param $v i32)
          (local $pos i32) (local $neg i32) (local $u i32)
          (local.set $pos (i32.const 48))
          (local.set $neg (i32.lt_s (local.get $v) (i32.const 0)))
          (local.set $u (if (result i32) (local.get $neg)
            (then (i32.sub (i32.const 0) (local.get $v))) (else (local.get $v))))
          (loop $digits
            (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
            (i32.store8 (local.get $pos) (i32.add (i32.const 48) (i32.rem_u (local.get $u) (i32.const 10))))
            (local.set $u (i32.div_u (local.get $u) (i32.const 10)))
            (br_if $digits (local.get $u)))
          (if (local.get $neg) (then
            (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
            (i32.store8 (local.get $pos) (i32.const 45))))
          (call $write (local.get $fd) (local.get $pos) (i32.sub (i32.const 48) (local.get $pos))))
        """#
    static let firstByte = #"""
        (func $first_byte (result i32)
          (i32.store (i32.const 16) (i32.const 60))
          (i32.store (i32.const 20) (i32.const 1))
          (i32.store8 (i32.const 60) (i32.const 0))
          (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
          (i32.load8_u (i32.const 60)))
        """#

    static func echoPath(in directory: TemporaryDirectory) throws -> String {
        try compile(
            repositoryRoot.appendingPathComponent("examples/functions/echo.wat").path,
            to: directory.appending("echo.wasm"))
    }
}

/// A host-service caller for functions that make no host calls.
struct NoHostServices: HostServiceCaller {
    func call(service: String, method: String, headers: [String: String], body: [UInt8]) async throws -> HostServiceReply {
        HostServiceReply(code: 404, message: "no host services in this test")
    }
}

@Suite(.enabled(if: WasmTestKit.available, WasmTestKit.skipReason), .timeLimit(.minutes(2)))
struct WasmFunctionTests {
    typealias Kit = WasmTestKit

    @Test func echoRoundTripsEmptySmallAndOneMebibytePayloads() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-echo-")
        let echo = try await Kit.load(try Kit.echoPath(in: directory))
        #expect(try await echo.invoke(subject: "echo.a", payload: []) == [])
        #expect(try await echo.invoke(subject: "echo.a", payload: Array("hello".utf8)) == Array("hello".utf8))
        let binary = (0..<256).map { UInt8($0) }
        #expect(try await echo.invoke(subject: "echo.a", payload: binary) == binary)
        var generator = SystemRandomNumberGenerator()
        let big = (0..<(1024 * 1024)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let reply = try await echo.invoke(subject: "echo.big", payload: big)
        #expect(reply.count == big.count)
        #expect(reply == big, "a 1 MiB payload came back changed")
    }

    @Test func argvIsNameAndSubjectAndTheEnvironmentIsTheDeploys() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-args-")
        let wat = """
            (module
              \(Kit.fdWriteImport)
              (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
              \(Kit.helpers)
              (func (export "_start")
                (drop (call $args_sizes_get (i32.const 64) (i32.const 68)))
                (drop (call $args_get (i32.const 1024) (i32.const 4096)))
                (call $write (i32.const 1) (i32.const 4096) (i32.load (i32.const 68)))
                (drop (call $environ_sizes_get (i32.const 64) (i32.const 68)))
                (drop (call $environ_get (i32.const 2048) (i32.const 8192)))
                (call $write (i32.const 1) (i32.const 8192) (i32.load (i32.const 68)))))
            """
        let function = try await Kit.function(
            wat, named: "args-env", in: directory, environment: ["GREETING": "hello", "EMPTY": ""])
        let reply = try await function.invoke(subject: "orders.created", payload: [])
        let strings = String(decoding: reply, as: UTF8.self).split(separator: "\0", omittingEmptySubsequences: false)
            .map(String.init).filter { !$0.isEmpty }
        #expect(Array(strings.prefix(2)) == ["args-env", "orders.created"])
        #expect(Set(strings.dropFirst(2)) == ["GREETING=hello", "EMPTY="])
        // The subject changes per call.
        let second = try await function.invoke(subject: "orders.deleted", payload: [])
        #expect(String(decoding: second, as: UTF8.self).contains("orders.deleted"))
    }

    @Test func theWholeOfStdoutIsTheReply() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-writes-")
        let wat = """
            (module
              \(Kit.fdWriteImport)
              \(Kit.helpers)
              (data (i32.const 100) "hello, ")
              (data (i32.const 120) "wasm ")
              (data (i32.const 140) "world")
              (func (export "_start")
                (call $write (i32.const 1) (i32.const 100) (i32.const 7))
                (call $write (i32.const 2) (i32.const 120) (i32.const 5))
                (call $write (i32.const 1) (i32.const 120) (i32.const 5))
                (call $write (i32.const 1) (i32.const 140) (i32.const 5))))
            """
        let function = try await Kit.function(wat, named: "writes", in: directory)
        let reply = try await function.invoke(subject: "s", payload: [])
        #expect(String(decoding: reply, as: UTF8.self) == "hello, wasm world")
    }

    /// A deployer points a wasm workload at a file it may not read (the node's seed): the
    /// refusal says what is wrong, never bytes of the file.
    @Test func aLoadErrorNeverEchoesTheModulesBytes() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-secret-")
        let secret = "SXASECRETQ7ZKYBPEXAMPLESEEDTHATMUSTNOTLEAK4HWJ2K"
        let seed = try directory.write(secret + "\n", to: "seed.wasm")
        // The magic right, then the secret: the parser fails on what follows.
        let prefixed = try directory.write("\0asm\u{01}\0\0\0\u{00}\u{30}" + secret, to: "prefixed.wasm")
        for path in [seed, prefixed] {
            do {
                _ = try await Kit.load(path)
                Issue.record("\(path) was accepted as a wasm module")
            } catch {
                #expect(error.message.hasPrefix("invalid wasm module: "), "\(error.message)")
                for fragment in ["SXA", "SECRET", "EXAMPLE", "83, 88"] {
                    #expect(!error.message.contains(fragment), "\(error.message)")
                }
            }
        }
    }

    @Test func anInvalidModuleIsRefusedWithWasmKitsReason() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-invalid-")
        // Not wasm at all.
        let garbage = try directory.write("this is not a wasm module", to: "garbage.wasm")
        do {
            _ = try await Kit.load(garbage)
            Issue.record("a text file was accepted as a wasm module")
        } catch {
            #expect(error.message.hasPrefix("invalid wasm module: "), "\(error.message)")
            #expect(error.message.count > "invalid wasm module: ".count)
        }
        // Well-formed binary, but a function body that does not type-check.
        let badBody = try Kit.build(
            #"(module (func (export "_start") (i32.add (i32.const 1) (f32.const 2))))"#,
            named: "bad-body", in: directory, extraFlags: ["--no-check"])
        do {
            _ = try await Kit.load(badBody)
            Issue.record("a module with an ill-typed body was accepted")
        } catch {
            #expect(error.message.hasPrefix("invalid wasm module: "), "\(error.message)")
            print("ill-typed body refused: \(error.message)")
        }
        // No _start.
        let noStart = try Kit.build(#"(module (func (export "main")))"#, named: "no-start", in: directory)
        await #expect(throws: FunctionError.self) { _ = try await Kit.load(noStart) }
        // An import nobody provides.
        let unknownImport = try Kit.build(
            #"(module (import "env" "magic" (func)) (func (export "_start")))"#, named: "unknown-import", in: directory)
        do {
            _ = try await Kit.load(unknownImport)
            Issue.record("a module importing env.magic was accepted")
        } catch {
            #expect(error.message.contains("env.magic"), "\(error.message)")
        }
        // A missing file.
        do {
            _ = try await Kit.load(directory.appending("missing.wasm"))
            Issue.record("a missing file was accepted")
        } catch {
            #expect(error.message.hasPrefix("cannot read wasm module at "), "\(error.message)")
        }
    }

    @Test func trapsFailTheInvocationNamingTheTrap() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-traps-")
        let wat = """
            (module
              \(Kit.fdReadImport)
              \(Kit.fdWriteImport)
              \(Kit.helpers)
              \(Kit.firstByte)
              (func (export "_start") (local $c i32)
                (local.set $c (call $first_byte))
                (if (i32.eq (local.get $c) (i32.const 117)) (then unreachable))
                (if (i32.eq (local.get $c) (i32.const 109))
                  (then (i32.store (i32.const 300) (i32.load (i32.const 0xFFFFFFF0)))))
                (if (i32.eq (local.get $c) (i32.const 100))
                  (then (i32.store (i32.const 300)
                    (i32.div_s (i32.const 1) (i32.sub (local.get $c) (i32.const 100))))))
                (call $write (i32.const 1) (i32.const 60) (i32.const 1))))
            """
        let function = try await Kit.function(wat, named: "traps", in: directory)
        let cases: [(String, String)] = [
            ("u", "unreachable"), ("m", "out of bounds memory access"), ("d", "integer divide by zero"),
        ]
        for (input, reason) in cases {
            let error = await Kit.failure(of: function, payload: Array(input.utf8))
            #expect(error?.message.hasPrefix("wasm trap: ") == true, "\(String(describing: error))")
            #expect(error?.message.contains(reason) == true, "input \(input): \(String(describing: error))")
        }
        // The function still works after traps.
        #expect(try await function.invoke(subject: "s", payload: Array("x".utf8)) == Array("x".utf8))
    }

    @Test func aRunawayCallIsStoppedAtTheTimeoutAndTheNextCallWorks() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-loop-")
        let wat = """
            (module
              \(Kit.fdReadImport)
              \(Kit.fdWriteImport)
              \(Kit.helpers)
              \(Kit.firstByte)
              (data (i32.const 100) "ok")
              (func $spin_with_calls (loop $again (call $nothing) (br $again)))
              (func $nothing)
              (func (export "_start") (local $c i32)
                (local.set $c (call $first_byte))
                (if (i32.eq (local.get $c) (i32.const 115)) (then (loop $forever (br $forever))))
                (if (i32.eq (local.get $c) (i32.const 99)) (then (call $spin_with_calls)))
                (call $write (i32.const 1) (i32.const 100) (i32.const 2))))
            """
        // Two workers: three runaway calls in a row must not leave the function stuck.
        let function = try await Kit.function(
            wat, named: "spin", in: directory, limits: Kit.limits(timeout: .milliseconds(200)), workers: 2)
        let clock = ContinuousClock()
        for input in ["s", "c", "s"] {
            let started = clock.now
            let error = await Kit.failure(of: function, payload: Array(input.utf8))
            let elapsed = clock.now - started
            #expect(error?.message == "timed out after 200 ms", "\(String(describing: error))")
            #expect(elapsed < .seconds(10), "the timeout took \(elapsed)")
            let next = clock.now
            #expect(try await function.invoke(subject: "s", payload: Array("x".utf8)) == Array("ok".utf8))
            // Usable again at once (the margin is for a busy machine; a stuck worker would take forever).
            #expect(clock.now - next < .seconds(10), "the call after a timeout took \(clock.now - next)")
        }
    }

    @Test func linearMemoryIsCapped() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-memory-")
        let growing = """
            (module
              \(Kit.fdWriteImport)
              \(Kit.helpers)
              (data (i32.const 100) "refused")
              (data (i32.const 120) "grown")
              (func (export "_start")
                ;; 100 more pages: 6.4 MiB.
                (if (i32.eq (memory.grow (i32.const 100)) (i32.const -1))
                  (then (call $write (i32.const 1) (i32.const 100) (i32.const 7)))
                  (else (call $write (i32.const 1) (i32.const 120) (i32.const 5))))))
            """
        let path = try Kit.build(growing, named: "grow", in: directory)
        let small = try await Kit.load(path, limits: Kit.limits(memory: 1024 * 1024))
        #expect(try await small.invoke(subject: "s", payload: []) == Array("refused".utf8))
        let roomy = try await Kit.load(path)
        #expect(try await roomy.invoke(subject: "s", payload: []) == Array("grown".utf8))

        // An initial memory over the limit refuses the deploy.
        let big = try Kit.build(#"(module (memory (export "memory") 40) (func (export "_start")))"#, named: "big", in: directory)
        do {
            _ = try await Kit.load(big, limits: Kit.limits(memory: 1024 * 1024))
            Issue.record("a module needing 2.5 MiB was loaded under a 1 MiB limit")
        } catch {
            #expect(error.message.contains("2621440 bytes"), "\(error.message)")
            #expect(error.message.contains("limit of 1048576 bytes"), "\(error.message)")
        }
    }

    @Test func noStateLeaksFromOneCallToTheNext() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-state-")
        let wat = """
            (module
              \(Kit.fdWriteImport)
              \(Kit.helpers)
              (global $calls (mut i32) (i32.const 0))
              (data (i32.const 510) " ")
              (func (export "_start")
                (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
                (i32.store8 (i32.const 500) (i32.add (i32.load8_u (i32.const 500)) (i32.const 1)))
                (call $write_int (i32.const 1) (global.get $calls))
                (call $write (i32.const 1) (i32.const 510) (i32.const 1))
                (call $write_int (i32.const 1) (i32.load8_u (i32.const 500)))))
            """
        let function = try await Kit.function(wat, named: "state", in: directory, workers: 1)
        for _ in 0..<3 {
            #expect(String(decoding: try await function.invoke(subject: "s", payload: []), as: UTF8.self) == "1 1")
        }
    }

    /// Each instance's linear memory reserves gigabytes of address space (WasmKit's guard
    /// regions), so a call whose store outlived it would show in the process's size at once.
    @Test func callsReleaseTheirInstances() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-leak-")
        let echo = try await Kit.load(try Kit.echoPath(in: directory), workers: 1)
        func virtualBytes() throws -> Int {
            let statm = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
            guard let pages = statm.split(separator: " ").first.flatMap({ Int($0) }) else {
                throw Kit.Failure(description: "cannot parse /proc/self/statm: \(statm)")
            }
            return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        }
        _ = try await echo.invoke(subject: "s", payload: [1])
        let before = try virtualBytes()
        for _ in 0..<200 { _ = try await echo.invoke(subject: "s", payload: [1]) }
        let grown = try virtualBytes() - before
        #expect(grown < 64 << 30, "200 calls grew the address space by \(grown >> 30) GiB: instances are leaking")
    }

    @Test func procExitCodes() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-exit-")
        let wat = """
            (module
              \(Kit.fdReadImport)
              \(Kit.fdWriteImport)
              \(Kit.procExitImport)
              \(Kit.helpers)
              \(Kit.firstByte)
              (data (i32.const 100) "partial")
              (data (i32.const 120) "bad things happened\\n")
              (func (export "_start") (local $code i32)
                (local.set $code (i32.sub (call $first_byte) (i32.const 48)))
                (call $write (i32.const 1) (i32.const 100) (i32.const 7))
                (if (local.get $code) (then (call $write (i32.const 2) (i32.const 120) (i32.const 20))))
                (call $proc_exit (local.get $code))
                unreachable))
            """
        let function = try await Kit.function(wat, named: "exit", in: directory)
        #expect(try await function.invoke(subject: "s", payload: Array("0".utf8)) == Array("partial".utf8))
        let error = await Kit.failure(of: function, payload: Array("3".utf8))
        #expect(error?.message.hasPrefix("exited with code 3") == true, "\(String(describing: error))")
        #expect(error?.message.contains("bad things happened") == true, "\(String(describing: error))")
    }

    @Test func theRuntimeLoadsWasmThroughNexFunctionRuntime() async throws {
        let directory = try TemporaryDirectory(prefix: "wasm-runtime-")
        let definition = FunctionDefinition(
            type: .wasm, workloadName: "echo", namespace: "default", artifactPath: try Kit.echoPath(in: directory),
            environment: [:])
        let runner = try await NexFunctionRuntime().load(definition, hostServices: NoHostServices())
        #expect(try await runner.invoke(subject: "s", payload: Array("hi".utf8)) == Array("hi".utf8))
    }
}
