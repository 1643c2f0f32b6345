import NexFunctions
import NexAgentKit
import NexAgentBus
import Testing

/// The `hostServices` global: each method goes through the HostServiceCaller with Nex 0.2's
/// headers and decodes its reply; a code other than 200 rejects the promise.
@Suite struct JavaScriptHostServicesTests {
    @Test func keyValue() async throws {
        let services = JavaScriptFakeHostServices()
        let function = try await JS.load("""
            async (subject, payload) => {
              const kv = hostServices.kv;
              const set = await kv.set('greeting', payload);
              const setText = await kv.set('name', 'nex');
              const value = await kv.get('greeting');
              const keys = await kv.keys();
              const deleted = await kv.delete('name');
              const after = await kv.keys();
              return { set, setText, value: new TextDecoder().decode(value), isBytes: value instanceof Uint8Array,
                       keys, deleted, after };
            }
            """, services: services)
        #expect(try await JS.text(function, "kv", Array("hello".utf8)) == """
            {"set":{"revision":1,"success":true},"setText":{"revision":2,"success":true},"value":"hello",\
            "isBytes":true,"keys":["greeting","name"],"deleted":{"success":true},"after":["greeting"]}
            """)
        let calls = services.calls
        #expect(calls.map { "\($0.service).\($0.method)" }
            == ["kv.set", "kv.set", "kv.get", "kv.keys", "kv.delete", "kv.keys"])
        #expect(calls[0].headers == ["x-keyvalue-key": "greeting"])
        #expect(calls[0].body == Array("hello".utf8))
        #expect(calls[1].body == Array("nex".utf8), "a string value is sent as UTF-8")
        #expect(calls[3].headers == [:])
        #expect(services.value(of: "greeting") == Array("hello".utf8))
    }

    @Test func aMissingKeyRejectsWithTheCodeAndMessage() async throws {
        let function = try await JS.load("""
            async (subject) => {
              if (subject === 'uncaught') return await hostServices.kv.get('missing');
              try {
                await hostServices.kv.get('missing');
                return 'no error';
              } catch (e) {
                return { message: e.message, code: e.code, isError: e instanceof Error };
              }
            }
            """)
        #expect(try await JS.text(function, "caught")
            == #"{"message":"kv.get failed: 404 no such key: missing","code":404,"isError":true}"#)
        let error = await JS.invokeError(function, "uncaught")
        #expect(error.message == "function test failed: Error: kv.get failed: 404 no such key: missing", "\(error)")
    }

    @Test func aCallerThatThrowsRejectsWithItsError() async throws {
        let function = try await JS.load("""
            async () => {
              try { await hostServices.kv.get('k'); return 'no error'; } catch (e) { return e.message + ' / ' + e.code; }
            }
            """, services: JavaScriptFakeHostServices(), caller: FailingCaller())
        #expect(try await JS.text(function, "x") == "kv.get failed: host services are unreachable / 500")
    }

    @Test func badArgumentsRejectBeforeAnyCall() async throws {
        let services = JavaScriptFakeHostServices()
        let function = try await JS.load("""
            async (subject) => {
              const attempts = [
                () => hostServices.kv.get(''),
                () => hostServices.kv.set('k', 42),
                () => hostServices.objectStore.put('o', { not: 'bytes' }),
                () => hostServices.messaging.publish(undefined, 'x'),
                () => hostServices.http.get(7),
              ];
              const messages = [];
              for (const attempt of attempts) {
                try { await attempt(); messages.push('no error'); } catch (e) { messages.push(String(e)); }
              }
              return messages;
            }
            """, services: services)
        #expect(try await JS.text(function, "x") == """
            ["TypeError: kv.get: key must be a non-empty string","TypeError: kv.set: value must be a Uint8Array or a string",\
            "TypeError: objectStore.put: data must be a Uint8Array or a string",\
            "TypeError: messaging.publish: subject must be a non-empty string",\
            "TypeError: http.get: url must be a non-empty string"]
            """)
        #expect(services.calls.isEmpty)
    }

    @Test func objectStore() async throws {
        let services = JavaScriptFakeHostServices()
        let function = try await JS.load("""
            async (subject, payload) => {
              const store = hostServices.objectStore;
              const info = await store.put('report.bin', new Uint8Array([1, 2, 3]));
              await store.put('b.txt', 'text');
              const data = await store.get('report.bin');
              const list = await store.list();
              const deleted = await store.delete('b.txt');
              let missing;
              try { await store.get('b.txt'); } catch (e) { missing = e.message; }
              return { info, data: Array.from(data), list, deleted, missing };
            }
            """, services: services)
        #expect(try await JS.text(function, "o") == """
            {"info":{"name":"report.bin","size":3},"data":[1,2,3],"list":[{"name":"b.txt","size":4},\
            {"name":"report.bin","size":3}],"deleted":{"success":true},"missing":"objectstore.get failed: 404 no such object: b.txt"}
            """)
        #expect(services.calls.first?.headers == ["x-object-name": "report.bin"])
        #expect(services.calls.first?.service == "objectstore")
    }

    @Test func messaging() async throws {
        let services = JavaScriptFakeHostServices()
        let function = try await JS.load("""
            async (subject, payload) => {
              const published = await hostServices.messaging.publish('events.one', payload);
              const reply = await hostServices.messaging.request('svc.echo', 'ping');
              let many;
              try { await hostServices.messaging.requestMany('svc.all', 'x'); } catch (e) { many = e.message; }
              return { published, reply: new TextDecoder().decode(reply), many };
            }
            """, services: services)
        #expect(try await JS.text(function, "m", [0x41]) == """
            {"published":{"success":true},"reply":"reply to svc.echo: ping",\
            "many":"messaging.requestMany failed: 501 messaging requestMany is not supported"}
            """)
        #expect(services.calls[0] == .init(service: "messaging", method: "publish",
                                           headers: ["x-subject": "events.one"], body: [0x41]))
        #expect(services.calls[1].headers == ["x-subject": "svc.echo"])
    }

    @Test func http() async throws {
        let services = JavaScriptFakeHostServices()
        let function = try await JS.load("""
            async (subject) => {
              const http = hostServices.http;
              switch (subject) {
                case 'get': return await http.get('https://example.test/a');
                case 'post': return await http.post('https://example.test/b', 'hello', { headers: { Accept: 'text/plain' } });
                case 'put': return (await http.put('https://example.test/c', new Uint8Array([104, 105]))).response;
                case 'patch': return (await http.patch('https://example.test/d')).response;
                case 'delete': return (await http.delete('https://example.test/e')).response;
                case 'head': return (await http.head('https://example.test/f')).status;
                case 'binary': return (await http.get('https://example.test/binary')).response;
                case 'unreachable':
                  try { await http.get('https://unreachable.test/'); return 'no error'; }
                  catch (e) { return e.message; }
              }
            }
            """, services: services)
        #expect(try await JS.text(function, "get")
            == #"{"status":201,"headers":{"Content-Type":["text/plain"]},"response":"get https://example.test/a [] "}"#)
        #expect(try await JS.text(function, "post")
            == #"{"status":201,"headers":{"Content-Type":["text/plain"]},"response":"post https://example.test/b [hello] x-http-header-Accept"}"#)
        #expect(try await JS.text(function, "put") == "put https://example.test/c [hi] ")
        #expect(try await JS.text(function, "patch") == "patch https://example.test/d [] ")
        #expect(try await JS.text(function, "delete") == "delete https://example.test/e [] ")
        #expect(try await JS.text(function, "head") == "201")
        #expect(try await JS.call(function, "binary") == [0, 1, 255], "a base64 body becomes a Uint8Array")
        #expect(try await JS.text(function, "unreachable") == "http.get https://unreachable.test/ failed: connection refused")
        #expect(services.calls.first?.headers == ["x-http-url": "https://example.test/a"])
        #expect(services.calls.map(\.method).prefix(6) == ["get", "post", "put", "patch", "delete", "head"])
    }

    @Test func manyConcurrentHostCallsSettleTheirOwnPromises() async throws {
        let services = JavaScriptFakeHostServices(delay: .milliseconds(5))
        let function = try await JS.load("""
            async (subject, payload) => {
              await hostServices.kv.set(subject, payload);
              const [value, keys] = await Promise.all([hostServices.kv.get(subject), hostServices.kv.keys()]);
              return new TextDecoder().decode(value) + ' ' + keys.includes(subject);
            }
            """, services: services)
        try await JS.within(.seconds(30), "100 concurrent invocations") {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<100 {
                    group.addTask {
                        let reply = try await function.invoke(subject: "key\(index)", payload: Array("value \(index)".utf8))
                        #expect(String(decoding: reply, as: UTF8.self) == "value \(index) true")
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}

/// A caller whose every call throws, as a host-service request that times out would.
private struct FailingCaller: HostServiceCaller {
    struct Unreachable: Error, CustomStringConvertible {
        var description: String { "host services are unreachable" }
    }

    func call(service: String, method: String, headers: [String: String], body: [UInt8]) async throws -> HostServiceReply {
        throw Unreachable()
    }
}
