#if canImport(Glibc)
import Glibc
#endif
import NATSTestSupport
import NexFunctions
import NexAgentKit
import NexWorkloads
import NexControl
import Testing

/// Loading and invoking JavaScript functions: results, promises, errors and limits.
@Suite struct JavaScriptFunctionTests {
    @Test func resultsAreConvertedToBytes() async throws {
        let function = try await JS.load("""
            (subject, payload) => {
              switch (subject) {
                case 'bytes': return new Uint8Array([1, 2, 255]);
                case 'view': return new Uint8Array([9, 8, 7, 6, 5]).subarray(1, 3);
                case 'buffer': return new Uint8Array([4, 5]).buffer;
                case 'string': return 'héllo';
                case 'json': return { a: 1, b: [true, null], s: subject };
                case 'number': return 42;
                case 'null': return null;
                case 'undefined': return undefined;
                case 'echo': return payload;
              }
            }
            """)
        #expect(try await JS.call(function, "bytes") == [1, 2, 255])
        #expect(try await JS.call(function, "view") == [8, 7])
        #expect(try await JS.call(function, "buffer") == [4, 5])
        #expect(try await JS.call(function, "string") == Array("héllo".utf8))
        #expect(try await JS.text(function, "json") == #"{"a":1,"b":[true,null],"s":"json"}"#)
        #expect(try await JS.text(function, "number") == "42")
        #expect(try await JS.text(function, "null") == "null")
        #expect(try await JS.call(function, "undefined") == [])
        #expect(try await JS.call(function, "echo", [0, 1, 2, 0]) == [0, 1, 2, 0])
        #expect(try await JS.call(function, "echo", []) == [])
    }

    @Test func subjectAndPayloadAreVisible() async throws {
        let function = try await JS.load("""
            (subject, payload) => ({
              subject,
              isUint8Array: payload instanceof Uint8Array,
              length: payload.length,
              text: new TextDecoder().decode(payload),
            })
            """)
        #expect(try await JS.text(function, "orders.new", Array("hi ✓".utf8))
            == #"{"subject":"orders.new","isUint8Array":true,"length":6,"text":"hi ✓"}"#)
    }

    @Test func promisesAreAwaited() async throws {
        let function = try await JS.load("""
            async (subject, payload) => {
              if (subject === 'chain') {
                let value = 0;
                for (let i = 0; i < 100; i++) value = await Promise.resolve(value + 1);
                return 'chained ' + value;
              }
              if (subject === 'promise') return new Promise((resolve) => resolve(new Uint8Array([7])));
              await null;
              return { later: subject };
            }
            """, timeout: .seconds(3))
        // Microtasks run when JavaScriptCore's API call returns, so these settle without any host call.
        #expect(try await JS.text(function, "a") == #"{"later":"a"}"#)
        #expect(try await JS.text(function, "chain") == "chained 100")
        #expect(try await JS.call(function, "promise") == [7])
    }

    @Test func aPlainThenableIsAwaited() async throws {
        let function = try await JS.load("() => ({ then(resolve) { resolve('from a thenable'); } })")
        #expect(try await JS.text(function, "t") == "from a thenable")
    }

    @Test func aSyntaxErrorRefusesTheLoadWithItsLine() async throws {
        let error = await JS.loadError("(subject, payload) => {\n  let x = ;\n  return x;\n}")
        #expect(error.message.contains("does not compile: SyntaxError (line 2)"), "\(error)")
        #expect(error.message.contains("(line 2)"), "\(error)")
        #expect(error.message.contains("function test"), "\(error)")
    }

    @Test func aScriptThatIsNotAFunctionIsRefused() async throws {
        let number = await JS.loadError("6 * 7")
        #expect(number.message.contains("evaluates to a number, not a function"), "\(number)")
        let declaration = await JS.loadError("function handler(subject, payload) { return 1; }")
        #expect(declaration.message.contains("evaluates to undefined, not a function"), "\(declaration)")
        let object = await JS.loadError("({ handler: 1 })")
        #expect(object.message.contains("evaluates to an object, not a function"), "\(object)")
    }

    @Test func aScriptThatThrowsWhileLoadingIsRefused() async throws {
        let error = await JS.loadError("\nthrow new RangeError('bad config');")
        #expect(error.message == "script of function test threw while loading: RangeError (line 2)", "\(error)")
    }

    /// Attack (defect 9): a function allocates without bound and keeps it in a global. That
    /// call fails with a clear error, the context is made anew, and the next call sees none
    /// of the garbage; the process's memory stays near the limit.
    @Test func aFunctionThatAllocatesWithoutBoundFailsAndTheNextCallGetsAFreshContext() async throws {
        func resident() -> Int {
            let text = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
            return (Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
        }
        var limits = FunctionLimits()
        limits.timeout = .seconds(30)
        limits.javaScriptMemoryBytes = resident() + 160 * 1024 * 1024
        let function = try await JavaScriptFunction.load(source: """
            globalThis.kept = [];
            (subject) => {
              if (subject === 'grow') {
                for (;;) { kept.push({ a: Math.random(), b: 'x' + Math.random(), c: new Array(16).fill(1) }); }
              }
              return String(kept.length);
            }
            """, name: "hog", limits: limits, hostServices: NoHostServices())
        #expect(String(decoding: try await function.invoke(subject: "count", payload: []), as: UTF8.self) == "0")
        let started = ContinuousClock.now
        do {
            _ = try await function.invoke(subject: "grow", payload: [])
            Issue.record("an unbounded allocation returned")
        } catch {
            #expect(error.message.contains("function hog exceeded its memory limit of"), "\(error)")
        }
        let peak = resident()
        print("javascript memory attack: stopped after \(ContinuousClock.now - started); resident \(peak / 1_048_576) MiB, "
              + "limit \(limits.javaScriptMemoryBytes / 1_048_576) MiB")
        #expect(peak < limits.javaScriptMemoryBytes + 128 * 1024 * 1024)
        #expect(String(decoding: try await function.invoke(subject: "count", payload: []), as: UTF8.self) == "0")
        // Again: the limit holds each time, the function stays usable.
        await #expect(throws: FunctionError.self) { _ = try await function.invoke(subject: "grow", payload: []) }
        #expect(String(decoding: try await function.invoke(subject: "count", payload: []), as: UTF8.self) == "0")
    }

    /// A deployer points a javascript workload at a file it may not read (the node's seed):
    /// the refusal names the kind of error and the line, never the file's text.
    @Test func aLoadErrorNeverQuotesTheSource() async throws {
        let secret = "SXASECRETQ7ZKYBPEXAMPLESEEDTHATMUSTNOTLEAK4HWJ2K"
        for source in [secret, "\n\n" + secret + " = 1 +", "let a = 1;\n\(secret).x", "throw '\(secret)'",
                       "throw new Error('\(secret)')", "x\(secret)y z"] {
            let error = await JS.loadError(source)
            #expect(!error.message.contains("SECRET"), "\(error)")
            #expect(!error.message.contains("EXAMPLE"), "\(error)")
        }
        #expect(await JS.loadError(secret).message == "script of function test threw while loading: ReferenceError (line 1)")
        #expect(await JS.loadError("\n\n" + secret + " = 1 +").message.contains("does not compile: SyntaxError (line 3)"))
        #expect(await JS.loadError("throw '\(secret)'").message.hasSuffix("threw while loading: a string was thrown"))
    }

    @Test func aThrownErrorFailsTheInvocation() async throws {
        let function = try await JS.load("""
            async (subject) => {
              if (subject === 'sync') {
                throw new TypeError('bad input');
              }
              await null;
              if (subject === 'string') throw 'just a string';
              throw new Error('boom after await');
            }
            """)
        // An async function turns every throw into a rejection.
        let sync = await JS.invokeError(function, "sync")
        #expect(sync.message == "function test failed: TypeError: bad input (line 3)", "\(sync)")
        let string = await JS.invokeError(function, "string")
        #expect(string.message == "function test failed: just a string", "\(string)")
        let late = await JS.invokeError(function, "late")
        #expect(late.message == "function test failed: Error: boom after await (line 7)", "\(late)")

        let plain = try await JS.load("(subject) => {\n  null.x;\n}")
        let typeError = await JS.invokeError(plain, "s")
        #expect(typeError.message.hasPrefix("function test failed: TypeError:"), "\(typeError)")
        #expect(typeError.message.hasSuffix("(line 2)"), "\(typeError)")
    }

    @Test func aValueThatIsNotJSONFailsTheInvocation() async throws {
        let function = try await JS.load("() => { const a = {}; a.self = a; return a; }")
        let error = await JS.invokeError(function, "cyclic")
        #expect(error.message.contains("cannot be sent as JSON"), "\(error)")
        #expect(error.message.contains("TypeError"), "\(error)")
    }

    @Test func anInfiniteLoopIsStoppedAndTheNextCallWorks() async throws {
        let function = try await JS.load("""
            (subject) => {
              if (subject === 'loop') { while (true) {} }
              return 'ok ' + subject;
            }
            """, timeout: .milliseconds(300))
        let started = ContinuousClock.now
        let error = await JS.invokeError(function, "loop")
        let elapsed = ContinuousClock.now - started
        #expect(error.message == "function test timed out after 300 ms", "\(error)")
        #expect(elapsed < .seconds(5), "the loop ran \(elapsed) before it was stopped")
        #expect(try await JS.text(function, "again") == "ok again")
        // And again, once the function is hot enough to run in optimized code (with
        // signal-based traps, JavaScriptCore's default, the watchdog missed those loops).
        try await JS.within(.seconds(30), "3000 warm-up calls") {
            for _ in 0..<3000 { _ = try await function.invoke(subject: "warm", payload: []) }
        }
        for round in 1...3 {
            let error = await JS.invokeError(function, "loop")
            #expect(error.message == "function test timed out after 300 ms", "round \(round): \(error)")
            #expect(try await JS.text(function, "next") == "ok next", "round \(round)")
        }
    }

    @Test func aLoopAfterAnAwaitedHostCallIsStopped() async throws {
        let services = JavaScriptFakeHostServices()
        let function = try await JS.load("""
            async (subject) => {
              await hostServices.kv.keys();
              if (subject === 'loop') { while (true) {} }
              return 'ok';
            }
            """, timeout: .milliseconds(300), services: services)
        let error = await JS.invokeError(function, "loop")
        #expect(error.message == "function test timed out after 300 ms", "\(error)")
        #expect(try await JS.text(function, "fine") == "ok")
    }

    @Test func aPromiseThatNeverSettlesTimesOut() async throws {
        let function = try await JS.load("""
            (subject) => subject === 'hang' ? new Promise(() => {}) : 'ok'
            """, timeout: .milliseconds(200))
        let started = ContinuousClock.now
        let error = await JS.invokeError(function, "hang")
        #expect(error.message == "function test timed out after 200 ms", "\(error)")
        #expect(ContinuousClock.now - started < .seconds(15))  // far less than "never", with room for a busy machine
        #expect(try await JS.text(function, "next") == "ok")
    }

    @Test func anInfiniteLoopWhileLoadingIsStopped() async throws {
        let error = await JS.loadError("while (true) {}\n() => 1", timeout: .milliseconds(200))
        #expect(error.message == "script of function test timed out after 200 ms while loading", "\(error)")
    }

    @Test func aScriptOverTheSizeLimitIsRefused() async throws {
        var settings = FunctionLimits()
        settings.scriptBytes = 64
        let limits = settings
        let source = "(subject) => '" + String(repeating: "x", count: 100) + "'"
        #expect(source.utf8.count == 115)
        await #expect(throws: FunctionError("script of function big is 115 bytes, over the limit of 64 bytes")) {
            try await JS.within(.seconds(10), "load a large script") {
                _ = try await JavaScriptFunction.load(source: source, name: "big", limits: limits, hostServices: JavaScriptFakeHostServices())
            }
        }

        let directory = try TemporaryDirectory(prefix: "nex-js-")
        let path = directory.path + "/big.js"
        try JS.write(source, to: path)
        let definition = FunctionDefinition(type: .javascript, workloadName: "big", namespace: "default",
                                            artifactPath: path, environment: [:], limits: limits)
        await #expect(throws: FunctionError("script of function big is 115 bytes, over the limit of 64 bytes")) {
            try await JS.within(.seconds(10), "load a large script file") {
                _ = try await NexFunctionRuntime().load(definition, hostServices: JavaScriptFakeHostServices())
            }
        }
    }

    @Test func aMissingFileIsRefusedWithItsPath() async throws {
        let definition = FunctionDefinition(type: .javascript, workloadName: "gone", namespace: "default",
                                            artifactPath: "/nonexistent/gone.js", environment: [:])
        let error = await #expect(throws: FunctionError.self) {
            try await JS.within(.seconds(10), "load a missing file") {
                _ = try await NexFunctionRuntime().load(definition, hostServices: JavaScriptFakeHostServices())
            }
        }
        #expect(error?.message.contains("/nonexistent/gone.js") == true, "\(String(describing: error))")
    }

    @Test func globalsPersistBetweenCallsOfOneFunction() async throws {
        let function = try await JS.load("""
            globalThis.calls = 0;
            () => ++globalThis.calls
            """)
        #expect(try await JS.text(function, "a") == "1")
        #expect(try await JS.text(function, "b") == "2")
        let other = try await JS.load("() => typeof globalThis.calls")
        #expect(try await JS.text(other, "c") == "undefined", "functions do not share a context")
    }

    @Test func theExampleEchoFunction() async throws {
        let function = try await JS.loadExample("echo.js")
        #expect(try await JS.text(function, "greet.me", Array("hello".utf8))
            == #"{"triggered_on":"greet.me","payload":"hello"}"#)
    }

    @Test func theExampleCounterFunction() async throws {
        let services = JavaScriptFakeHostServices()
        let function = try await JS.loadExample("kv-counter.js", services: services)
        #expect(try await JS.text(function, "count") == "1")
        #expect(try await JS.text(function, "count") == "2")
        #expect(try await JS.text(function, "count") == "3")
        #expect(services.value(of: "count") == Array("3".utf8))
    }

    @Test func callsRunConcurrentlyWhileOthersAwaitHostServices() async throws {
        let services = JavaScriptFakeHostServices(delay: .milliseconds(100))
        let function = try await JS.load("""
            async (subject) => {
              if (subject === 'slow') return 'slow ' + (await hostServices.kv.keys()).length;
              return 'fast';
            }
            """, services: services)
        try await JS.within(.seconds(20), "a slow and a fast call") {
            async let slow = function.invoke(subject: "slow", payload: [])
            try await Task.sleep(for: .milliseconds(20))
            let fast = try await function.invoke(subject: "fast", payload: [])
            #expect(fast == Array("fast".utf8))
            #expect(try await slow == Array("slow 0".utf8))
        }
    }
}
