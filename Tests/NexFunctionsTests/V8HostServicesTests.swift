import NexFunctions
import NexAgentKit
import NexAgentBus
import NexControl
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
        #expect(error.message.contains("kv.get timed out"), "\(error)")
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
