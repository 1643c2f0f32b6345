import Foundation
import NATSTestSupport
import NIOCore
import Testing
@testable import NATSWire

/// NATSWire and nats-py read what the other wrote, on one real server.
@Suite struct JetStreamInteropTests {
    /// The bytes both sides generate: `(i * 7 + 3) % 251`.
    static func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(($0 * 7 + 3) % 251) } }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func objectsWrittenByNatsPyAreReadByNATSWire() async throws {
        try await withJetStream { f in
            let size = 1_048_576 + 5
            _ = try await NatsPyScript.run(NatsPyScript.script("""
                obs = await js.create_object_store("pyobj")
                data = bytes((i * 7 + 3) % 251 for i in range(\(size)))
                await obs.put("from/python.bin", data)
                await obs.put("empty", b"")
                await obs.put("gone", b"soon deleted")
                await obs.delete("gone")
                """), url: f.server.url)
            let store = try await f.js.objectStore("pyobj")
            let (info, data) = try await store.get("from/python.bin")
            #expect(data == Self.pattern(size))
            #expect(info.size == UInt64(size))
            #expect(info.chunks == 9)
            #expect(try await store.get("empty").data.isEmpty)
            await #expect(throws: ObjectStoreError.objectNotFound(bucket: "pyobj", name: "gone")) { try await store.get("gone") }
            let directory = try TemporaryDirectory(prefix: "pyobj-")
            try await store.get("from/python.bin", toFile: directory.appending("f"))
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: directory.appending("f")))) == Self.pattern(size))
            #expect(Set(try await store.list().map(\.name)) == ["from/python.bin", "empty"])
        }
    }

    @Test func objectsWrittenByNATSWireAreReadByNatsPy() async throws {
        try await withJetStream { f in
            let store = try await f.js.createObjectStore(ObjectStoreConfig(bucket: "swobj"))
            let data = Self.pattern(2 * 1024 * 1024 + 77)
            try await store.put(ObjectMeta(name: "from swift ü", description: "made in Swift"), data: data)
            try await store.put("tiny", data: [42])
            try await store.put("deleted", data: [1])
            try await store.delete("deleted")
            let output = try await NatsPyScript.run(NatsPyScript.script("""
                obs = await js.object_store("swobj")
                result = await obs.get("from swift ü")
                print(hashlib.sha256(result.data).hexdigest(), len(result.data), result.info.size, result.info.chunks, result.info.description)
                tiny = await obs.get("tiny")
                print(list(tiny.data))
                names = sorted(o.name for o in await obs.list(ignore_deletes=True))
                print(",".join(names))
                try:
                    await obs.get("deleted")
                    print("deleted object found")
                except Exception as e:
                    print(type(e).__name__)
                """), url: f.server.url)
            let lines = output.split(separator: "\n").map(String.init)
            #expect(lines.count == 4, "\(output)")
            guard lines.count == 4 else { return }
            #expect(lines[0] == "\(Self.hex(Digest.sha256(data))) \(data.count) \(data.count) 17 made in Swift")
            #expect(lines[1] == "[42]")
            #expect(lines[2] == "from swift ü,tiny")
            #expect(lines[3].contains("NotFound"))
        }
    }

    @Test func keyValueWrittenByNatsPyIsReadByNATSWire() async throws {
        try await withJetStream { f in
            _ = try await NatsPyScript.run(NatsPyScript.script("""
                kv = await js.create_key_value(bucket="pykv", history=5)
                await kv.put("greeting", b"hello")
                await kv.put("greeting", b"hello again")
                await kv.put("config.a", b"1")
                await kv.put("doomed", b"x")
                await kv.delete("doomed")
                """), url: f.server.url)
            let kv = try await f.js.keyValue("pykv")
            #expect(try await kv.get("greeting").string == "hello again")
            #expect(try await kv.history("greeting").map(\.string) == ["hello", "hello again"])
            await #expect(throws: KeyValueError.keyNotFound(bucket: "pykv", key: "doomed")) { try await kv.get("doomed") }
            #expect(Set(try await kv.keys()) == ["greeting", "config.a"])
            let last = try await kv.get("greeting").revision
            try await kv.update("greeting", "from swift", revision: last)
        }
    }

    @Test func keyValueWrittenByNATSWireIsReadByNatsPy() async throws {
        try await withJetStream { f in
            let kv = try await f.js.createKeyValue(KeyValueConfig(bucket: "swkv", history: 3))
            try await kv.put("name", "natswire")
            let revision = try await kv.put("count", "1")
            try await kv.update("count", "2", revision: revision)
            try await kv.put("old", "x")
            try await kv.delete("old")
            try await kv.put("purged", "y")
            try await kv.purge("purged")
            let output = try await NatsPyScript.run(NatsPyScript.script("""
                kv = await js.key_value("swkv")
                print((await kv.get("name")).value.decode())
                entry = await kv.get("count")
                print(entry.value.decode(), entry.revision)
                for key in ("old", "purged"):
                    try:
                        await kv.get(key)
                        print(key, "found")
                    except Exception as e:
                        print(key, type(e).__name__)
                print(",".join(sorted(await kv.keys())))
                await kv.update("count", b"3", last=entry.revision)
                """), url: f.server.url)
            let lines = output.split(separator: "\n").map(String.init)
            #expect(lines.count == 5, "\(output)")
            guard lines.count == 5 else { return }
            #expect(lines[0] == "natswire")
            #expect(lines[1] == "2 3")
            #expect(lines[2].hasPrefix("old ") && lines[2].contains("NotFound"))
            #expect(lines[3].hasPrefix("purged ") && lines[3].contains("NotFound"))
            #expect(lines[4] == "count,name")
            #expect(try await kv.get("count").string == "3")
        }
    }
}
