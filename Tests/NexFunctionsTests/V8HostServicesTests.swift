import NexFunctions
import NexAgentKit
import NexAgentBus
import NexControl
import Synchronization
import Testing

/// The `v8` type: Nex 0.2's functions call host services synchronously
/// (`hostServices.kv.get(key)` is the value, not a promise of it) and run unchanged.
@Suite struct V8HostServicesTests {
    /// A counter as Nex 0.2's examples write one: no `await` anywhere.
    static let counter = """
        (subject, payload) => {
          let count = 0;
          try {
            count = parseInt(String.fromCharCode(...hostServices.kv.get('count')), 10);
          } catch (e) {
            if (e.code !== 404) throw e;
          }
          count += 1;
          hostServices.kv.set('count', String(count));
          return count;
        }
        """

    @Test func aNex02CounterCountsOneTwoThree() async throws {
        let services = JavaScriptFakeHostServices()
        let function = try await JS.load(Self.counter, services: services, synchronous: true)
        var replies: [String] = []
        for _ in 0..<3 { replies.append(try await JS.text(function, "count")) }
        #expect(replies == ["1", "2", "3"])
        #expect(services.value(of: "count") == Array("3".utf8))
    }

    @Test func theSameCounterAsJavascriptReadsAPromise() async throws {
        // Why `v8` has its own semantics: with promises the counter never sees the value.
        let services = JavaScriptFakeHostServices()
        let function = try await JS.load(Self.counter, services: services)
        var replies: [String?] = []
        for _ in 0..<3 { replies.append(try? await JS.text(function, "count")) }
        #expect(replies != ["1", "2", "3"])
        #expect(services.value(of: "count") != Array("3".utf8))
    }

    @Test func everyServiceAnswersAtOnce() async throws {
        let services = JavaScriptFakeHostServices()
        let function = try await JS.load("""
            (subject, payload) => {
              const set = hostServices.kv.set('k', payload);
              const value = new TextDecoder().decode(hostServices.kv.get('k'));
              const keys = hostServices.kv.keys();
              const put = hostServices.objectStore.put('o', 'object');
              const object = new TextDecoder().decode(hostServices.objectStore.get('o'));
              const published = hostServices.messaging.publish('a.b', 'hi');
              const notPromises = [set, keys, put, published].every((v) => typeof v.then !== 'function');
              return { set, value, keys, object, published, notPromises };
            }
            """, services: services, synchronous: true)
        let reply = try await JS.text(function, "all", Array("v".utf8))
        #expect(reply == #"{"set":{"revision":1,"success":true},"value":"v","keys":["k"],"object":"object","published":{"success":true},"notPromises":true}"#)
    }

    @Test func aFailedCallThrowsAtTheCallWithItsCode() async throws {
        let function = try await JS.load("""
            (subject) => {
              if (subject === 'uncaught') return hostServices.kv.get('missing');
              try { hostServices.kv.get('missing'); return 'no error'; }
              catch (e) { return { message: e.message, code: e.code, isError: e instanceof Error }; }
            }
            """, synchronous: true)
        #expect(try await JS.text(function, "caught")
            == #"{"message":"kv.get failed: 404 no such key: missing","code":404,"isError":true}"#)
        let error = await JS.invokeError(function, "uncaught")
        #expect(error.message == "function test failed: Error: kv.get failed: 404 no such key: missing (line 2)", "\(error)")
    }

    @Test func badArgumentsThrowBeforeAnyCall() async throws {
        let services = JavaScriptFakeHostServices()
        let function = try await JS.load("""
            () => {
              try { hostServices.kv.set('k', 42); return 'no error'; } catch (e) { return String(e); }
            }
            """, services: services, synchronous: true)
        #expect(try await JS.text(function, "x") == "TypeError: kv.set: value must be a Uint8Array or a string")
        #expect(services.calls.isEmpty)
    }

    @Test func aHostServiceThatNeverAnswersEndsAtTheDeadlineAndTheNextCallWorks() async throws {
        let function = try await JS.load("""
            (subject) => subject === 'hang' ? hostServices.kv.get('k') : 'fine'
            """, timeout: .milliseconds(300), caller: SilentCaller(), synchronous: true)
        let started = ContinuousClock.now
        let error = await JS.invokeError(function, "hang")
        #expect(error.message.contains("timed out after 300 ms"), "\(error)")
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(try await JS.text(function, "next") == "fine")
    }
}

/// A host service that never answers (until cancelled).
private struct SilentCaller: HostServiceCaller {
    func call(service: String, method: String, headers: [String: String], body: [UInt8]) async throws -> HostServiceReply {
        try await Task.sleep(for: .seconds(3600))
        throw CancellationError()
    }
}

extension V8HostServicesTests {
    /// Host calls only while the function runs for a message: not at load, and not from the
    /// result's `toJSON` after it returned (where no deadline would bound the wait).
    @Test func hostCallsOutsideAnInvocationAreRefused() async throws {
        do {
            _ = try await JS.load("hostServices.kv.get('k'); (s) => s", synchronous: true)
            Issue.record("a host call at load was made")
        } catch {
            #expect("\(error)".contains("threw while loading"), "\(error)")
        }

        let services = JavaScriptFakeHostServices()
        let function = try await JS.load("""
            (subject) => ({ toJSON() { try { hostServices.kv.get('k'); return 'called'; } catch (e) { return String(e); } } })
            """, services: services, synchronous: true)
        let reply = try await JS.text(function, "x")
        #expect(reply.contains("host services answer only while the function runs"), "\(reply)")
        #expect(services.calls.isEmpty)
    }

    /// A timed-out host call fails the invocation even when the script catches the error.
    @Test func aCaughtTimeoutStillFailsTheInvocation() async throws {
        let function = try await JS.load("""
            (subject) => { try { hostServices.kv.get('k'); } catch (e) {} return 'swallowed'; }
            """, timeout: .milliseconds(300), caller: CountingSilentCaller(), synchronous: true)
        let error = await JS.invokeError(function, "x")
        #expect(error.message.contains("timed out"), "\(error)")
    }

    /// Calls that wait behind a blocked one keep the time they were asked with: once it is up
    /// they fail without running (no host call made long after).
    @Test func queuedCallsPastTheirDeadlineDoNotRun() async throws {
        let counter = CountingSilentCaller()
        let function = try await JS.load("(subject) => hostServices.kv.get(subject)",
                                         timeout: .milliseconds(300), caller: counter, synchronous: true)
        async let first = JS.invokeError(function, "a")
        async let second = JS.invokeError(function, "b")
        async let third = JS.invokeError(function, "c")
        let errors = await [first, second, third]
        #expect(errors.allSatisfy { $0.message.contains("timed out") }, "\(errors)")
        #expect(counter.calls <= 1, "calls made after their time was up: \(counter.calls)")
    }
}

/// A host service that never answers (until cancelled), counting the calls it got.
private final class CountingSilentCaller: HostServiceCaller {
    private let count = Mutex(0)
    var calls: Int { count.withLock { $0 } }
    func call(service: String, method: String, headers: [String: String], body: [UInt8]) async throws -> HostServiceReply {
        count.withLock { $0 += 1 }
        try await Task.sleep(for: .seconds(3600))
        throw CancellationError()
    }
}
