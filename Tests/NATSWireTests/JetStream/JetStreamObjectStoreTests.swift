import Foundation
import NATSTestSupport
import NIOCore
import Testing
@testable import NATSWire

@Suite struct JetStreamObjectStoreTests {
    static func expectedDigest(_ bytes: [UInt8]) -> String {
        "SHA-256=" + ObjectStore.paddedBase64URL(Digest.sha256(bytes))
    }

    @Test func putAndGetBytesOfManySizes() async throws {
        try await withJetStream { f in
            let store = try await f.js.createObjectStore(ObjectStoreConfig(bucket: "sizes"))
            let chunk = ObjectStore.defaultChunkSize
            for (index, size) in [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 17].enumerated() {
                let data = pseudoRandomBytes(size, seed: UInt64(index))
                let put = try await store.put("obj-\(size)", data: data)
                #expect(put.size == UInt64(size))
                #expect(put.chunks == (size + chunk - 1) / chunk)
                #expect(put.digest == Self.expectedDigest(data))
                #expect(put.bucket == "sizes" && put.nuid.count == 22)
                let (info, got) = try await store.get("obj-\(size)")
                #expect(got == data, "object of \(size) bytes")
                #expect(info.size == UInt64(size) && info.digest == put.digest && info.nuid == put.nuid)
                #expect(abs(info.modified?.timeIntervalSinceNow ?? 1000) < 60)
            }
        }
    }

    @Test func metadataIsStoredTheWayOtherClientsWriteIt() async throws {
        try await withJetStream { f in
            let store = try await f.js.createObjectStore(ObjectStoreConfig(bucket: "meta", description: "d", storage: .memory))
            let meta = ObjectMeta(
                name: "dir/file name ü.txt", description: "a file", headers: ["X-Kind": ["text", "utf8"]],
                metadata: ["owner": "ops"], chunkSize: 1000)
            let data = pseudoRandomBytes(4500)
            let put = try await store.put(meta, data: ByteBuffer(bytes: data))
            #expect(put.chunks == 5)
            let info = try await store.info(meta.name)
            #expect(info.description == "a file")
            #expect(info.headers == ["X-Kind": ["text", "utf8"]])
            #expect(info.metadata == ["owner": "ops"])
            #expect(info.chunkSize == 1000)
            #expect(info.deleted == false)
            // The raw metadata: padded base64url subject, Go field names.
            let subject = "$O.meta.M." + ObjectStore.paddedBase64URL(Array(meta.name.utf8))
            #expect(subject.hasSuffix("="))
            let raw = try await f.js.messageGet(stream: "OBJ_meta", .lastBySubject(subject))
            #expect(raw.headers?["Nats-Rollup"] == "sub")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(Array(buffer: raw.payload))) as? [String: Any])
            #expect(json["name"] as? String == meta.name)
            #expect(json["bucket"] as? String == "meta")
            #expect(json["size"] as? Int == 4500)
            #expect(json["chunks"] as? Int == 5)
            #expect(json["digest"] as? String == Self.expectedDigest(data))
            #expect((json["options"] as? [String: Any])?["max_chunk_size"] as? Int == 1000)
            #expect(RFC3339.parse(json["mtime"] as? String ?? "") != nil)
            #expect(try await store.get(meta.name).data == data)
        }
    }

    @Test func filesAreStreamedBothWays() async throws {
        try await withJetStream { f in
            let directory = try TemporaryDirectory(prefix: "objfile-")
            let source = directory.appending("source.bin")
            let data = pseudoRandomBytes(5 * 1024 * 1024 + 123)
            try Data(data).write(to: URL(fileURLWithPath: source))
            let store = try await f.js.createObjectStore(ObjectStoreConfig(bucket: "files"))
            let put = try await store.put("big", contentsOfFile: source)
            #expect(put.size == UInt64(data.count))
            #expect(put.chunks == 41)
            #expect(put.digest == Self.expectedDigest(data))
            let target = directory.appending("target.bin")
            try Data("old content".utf8).write(to: URL(fileURLWithPath: target))
            let info = try await store.get("big", toFile: target)
            #expect(info.size == UInt64(data.count))
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: target))) == data)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["source.bin", "target.bin"])

            await #expect(throws: ObjectStoreError.self) { try await store.put("x", contentsOfFile: directory.appending("missing")) }
            await #expect(throws: ObjectStoreError.self) { try await store.get("big", toFile: directory.appending("no/such/dir/f")) }
            await #expect(throws: ObjectStoreError.fileError(path: "/dev/null", operation: "replace", reason: "not a regular file")) {
                try await store.get("big", toFile: "/dev/null")
            }
            await #expect(throws: ObjectStoreError.self) { try await store.get("big", toFile: directory.path) }
        }
    }

    @Test func replacingAnObjectPurgesItsOldChunks() async throws {
        try await withJetStream { f in
            let store = try await f.js.createObjectStore(ObjectStoreConfig(bucket: "rep"))
            let first = try await store.put("a", data: pseudoRandomBytes(300_000, seed: 1))
            let second = try await store.put("a", data: pseudoRandomBytes(200_000, seed: 2))
            #expect(first.nuid != second.nuid)
            #expect(try await store.get("a").data == pseudoRandomBytes(200_000, seed: 2))
            let state = try await store.status().state
            #expect(state.messages == UInt64(second.chunks + 1))
        }
    }

    @Test func deleteListAndNotFound() async throws {
        try await withJetStream { f in
            let store = try await f.js.createObjectStore(ObjectStoreConfig(bucket: "lst"))
            #expect(try await store.list().isEmpty)
            for name in ["one", "two", "three"] { try await store.put(name, data: Array(name.utf8)) }
            #expect(try await store.list().map(\.name) == ["one", "two", "three"])
            try await store.delete("two")
            #expect(try await store.list().map(\.name) == ["one", "three"])
            let all = try await store.list(showDeleted: true)
            #expect(all.map(\.name) == ["one", "three", "two"])
            #expect(all.last?.deleted == true && all.last?.size == 0)
            await #expect(throws: ObjectStoreError.objectNotFound(bucket: "lst", name: "two")) { try await store.info("two") }
            await #expect(throws: ObjectStoreError.objectNotFound(bucket: "lst", name: "two")) { try await store.get("two") }
            await #expect(throws: ObjectStoreError.objectNotFound(bucket: "lst", name: "two")) { try await store.delete("two") }
            #expect(try await store.info("two", showDeleted: true).deleted)
            await #expect(throws: ObjectStoreError.objectNotFound(bucket: "lst", name: "zzz")) { try await store.get("zzz") }
            // Only the three metadata messages and the chunks of "one" and "three" remain.
            #expect(try await store.status().state.messages == 5)
            // Put after delete brings it back.
            try await store.put("two", data: [1, 2, 3])
            #expect(try await store.get("two").data == [1, 2, 3])
        }
    }

    @Test func bucketsAndNamesAreChecked() async throws {
        try await withJetStream { f in
            for bucket in ["", "a.b", "a b", "*"] {
                await #expect(throws: ObjectStoreError.invalidBucketName(bucket)) {
                    try await f.js.createObjectStore(ObjectStoreConfig(bucket: bucket))
                }
                await #expect(throws: ObjectStoreError.invalidBucketName(bucket)) { try await f.js.objectStore(bucket) }
            }
            await #expect(throws: ObjectStoreError.bucketNotFound("none")) { try await f.js.objectStore("none") }
            await #expect(throws: ObjectStoreError.bucketNotFound("none")) { try await f.js.deleteObjectStore("none") }
            let store = try await f.js.createObjectStore(ObjectStoreConfig(bucket: "chk"))
            await #expect(throws: ObjectStoreError.invalidObjectName("")) { try await store.put("", data: [1]) }
            await #expect(throws: ObjectStoreError.invalidObjectName("")) { try await store.get("") }
            await #expect(throws: ObjectStoreError.self) { try await store.put(ObjectMeta(name: "c", chunkSize: 0), data: [1]) }
            #expect(try await store.status().state.messages == 0)
            try await f.js.deleteObjectStore("chk")
            var js = f.js
            js.timeout = .seconds(1)  // a direct get on a deleted stream goes unanswered
            let stale = try await js.createObjectStore(ObjectStoreConfig(bucket: "gone"))
            try await js.deleteObjectStore("gone")
            await #expect(throws: ObjectStoreError.bucketNotFound("gone")) { try await stale.get("x") }
            await #expect(throws: ObjectStoreError.bucketNotFound("gone")) { try await stale.list() }
            await #expect(throws: ObjectStoreError.bucketNotFound("gone")) { try await stale.put("x", data: [1]) }
        }
    }

    @Test func corruptChunkIsADigestMismatchAndLeavesNoPartialFile() async throws {
        try await withJetStream { f in
            let store = try await f.js.createObjectStore(ObjectStoreConfig(bucket: "bad"))
            let data = pseudoRandomBytes(3000)
            let put = try await store.put(ObjectMeta(name: "victim", chunkSize: 1000), data: data)
            // Replace the middle chunk with different bytes of the same size.
            let chunks = "$O.bad.C.\(put.nuid)"
            try await f.js.purgeStream("OBJ_bad", subject: chunks)
            try await f.js.publish(Array(data[0..<1000]), to: chunks)
            try await f.js.publish([UInt8](repeating: 0xEE, count: 1000), to: chunks)
            try await f.js.publish(Array(data[2000..<3000]), to: chunks)

            let directory = try TemporaryDirectory(prefix: "objbad-")
            let target = directory.appending("out.bin")
            let error = await #expect(throws: ObjectStoreError.self) { try await store.get("victim", toFile: target) }
            guard case .digestMismatch(let bucket, let name, let expected, let actual) = error else {
                Issue.record("expected a digest mismatch, got \(String(describing: error))")
                return
            }
            #expect(bucket == "bad" && name == "victim")
            #expect(expected == put.digest)
            #expect(actual != expected)
            #expect(!FileManager.default.fileExists(atPath: target))
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
            await #expect(throws: ObjectStoreError.self) { try await store.get("victim") }

            // An existing file is left untouched by a failed get.
            try Data("keep me".utf8).write(to: URL(fileURLWithPath: target))
            await #expect(throws: ObjectStoreError.self) { try await store.get("victim", toFile: target) }
            #expect(try String(contentsOfFile: target, encoding: .utf8) == "keep me")
        }
    }

    @Test func metadataThatLiesAboutTheSizeIsCaught() async throws {
        try await withJetStream { f in
            let store = try await f.js.createObjectStore(ObjectStoreConfig(bucket: "lie"))
            var info = try await store.put("x", data: pseudoRandomBytes(5000))
            info.size = 4000
            try await f.js.publish(
                try JetStreamJSON.encode(info), to: store.metaSubject("x"), headers: ["Nats-Rollup": "sub"])
            await #expect(throws: ObjectStoreError.sizeMismatch(bucket: "lie", name: "x", expected: 4000, actual: 5000)) {
                try await store.get("x")
            }
            info.size = 6000
            try await f.js.publish(
                try JetStreamJSON.encode(info), to: store.metaSubject("x"), headers: ["Nats-Rollup": "sub"])
            let directory = try TemporaryDirectory(prefix: "objlie-")
            await #expect(throws: ObjectStoreError.sizeMismatch(bucket: "lie", name: "x", expected: 6000, actual: 5000)) {
                try await store.get("x", toFile: directory.appending("x"))
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
            try await f.js.publish("not json", to: store.metaSubject("x"), headers: ["Nats-Rollup": "sub"])
            let bad = await #expect(throws: ObjectStoreError.self) { try await store.info("x") }
            guard case .badMetadata = bad else {
                Issue.record("expected bad metadata, got \(String(describing: bad))")
                return
            }
        }
    }
}
