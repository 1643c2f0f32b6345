import Foundation
import NATSTestSupport
import NIOCore
import Testing
@testable import NATSWire

@Suite struct JetStreamKeyValueTests {
    @Test func createBucketWithSettingsAndBind() async throws {
        try await withJetStream { f in
            let config = KeyValueConfig(
                bucket: "settings", description: "app settings", history: 5, ttl: .seconds(3600), maxBytes: 1 << 20,
                maxValueSize: 4096, storage: .memory, replicas: 1)
            let kv = try await f.js.createKeyValue(config)
            #expect(kv.streamName == "KV_settings")
            #expect(kv.allowsDirect)
            let info = try await kv.info()
            #expect(info.config.subjects == ["$KV.settings.>"])
            #expect(info.config.maxMessagesPerSubject == 5)
            #expect(info.config.maxAge == .seconds(3600))
            #expect(info.config.maxBytes == 1 << 20)
            #expect(info.config.maxMessageSize == 4096)
            #expect(info.config.storage == .memory)
            #expect(info.config.allowRollupHeaders && info.config.denyDelete && info.config.allowDirect)
            #expect(info.config.discard == .new)
            // Same config again: fine. Another config: the server's "name in use" error.
            _ = try await f.js.createKeyValue(config)
            var other = config
            other.history = 2
            let error = await #expect(throws: JetStreamError.self) { try await f.js.createKeyValue(other) }
            #expect(error?.errCode == JetStreamError.streamNameInUse)

            let bound = try await f.js.keyValue("settings")
            try await kv.put("a", "1")
            #expect(try await bound.get("a").string == "1")
            try await f.js.deleteKeyValue("settings")
            await #expect(throws: KeyValueError.bucketNotFound("settings")) { try await f.js.keyValue("settings") }
            await #expect(throws: KeyValueError.bucketNotFound("settings")) { try await f.js.deleteKeyValue("settings") }
        }
    }

    @Test func putGetRevisionsAndDelete() async throws {
        try await withJetStream { f in
            let kv = try await f.js.createKeyValue(KeyValueConfig(bucket: "b", history: 10))
            let r1 = try await kv.put("color", "blue")
            let r2 = try await kv.put("color", [0x67, 0x72, 0x65, 0x65, 0x6E])
            let r3 = try await kv.put("size", ByteBuffer(string: "xl"))
            #expect((r1, r2, r3) == (1, 2, 3))
            let entry = try await kv.get("color")
            #expect(entry.string == "green")
            #expect(entry.revision == 2)
            #expect(entry.key == "color" && entry.bucket == "b")
            #expect(entry.operation == .put)
            #expect(abs(entry.created.timeIntervalSinceNow) < 60)
            #expect(try await kv.get("color", revision: 1).string == "blue")
            // A revision of another key is not this key's.
            await #expect(throws: KeyValueError.keyNotFound(bucket: "b", key: "color")) {
                try await kv.get("color", revision: 3)
            }
            await #expect(throws: KeyValueError.keyNotFound(bucket: "b", key: "nope")) { try await kv.get("nope") }

            let deleted = try await kv.delete("color")
            await #expect(throws: KeyValueError.keyNotFound(bucket: "b", key: "color")) { try await kv.get("color") }
            #expect(try await kv.get("color", revision: deleted).operation == .delete)
            let history = try await kv.history("color")
            #expect(history.map(\.operation) == [.put, .put, .delete])
            #expect(history.map(\.revision) == [1, 2, deleted])
            #expect(history.first?.string == "blue")

            try await kv.put("color", "red")
            try await kv.purge("color")
            await #expect(throws: KeyValueError.keyNotFound(bucket: "b", key: "color")) { try await kv.get("color") }
            let afterPurge = try await kv.history("color")
            #expect(afterPurge.map(\.operation) == [.purge])
            await #expect(throws: KeyValueError.keyNotFound(bucket: "b", key: "never")) { try await kv.history("never") }
        }
    }

    @Test func createOnlyIfAbsentAndCompareAndSet() async throws {
        try await withJetStream { f in
            let kv = try await f.js.createKeyValue(KeyValueConfig(bucket: "cas", history: 5))
            let created = try await kv.create("lock", "owner-1")
            let exists = await #expect(throws: KeyValueError.self) { try await kv.create("lock", "owner-2") }
            guard case .keyExists(let bucket, let key, let cause) = exists else {
                Issue.record("expected keyExists, got \(String(describing: exists))")
                return
            }
            #expect(bucket == "cas" && key == "lock")
            #expect(cause.errCode == JetStreamError.wrongLastSequence)

            let updated = try await kv.update("lock", "owner-1b", revision: created)
            #expect(updated > created)
            let conflict = await #expect(throws: KeyValueError.self) {
                try await kv.update("lock", "late", revision: created)
            }
            guard case .wrongLastRevision(_, "lock", let expected, let error) = conflict else {
                Issue.record("expected wrongLastRevision, got \(String(describing: conflict))")
                return
            }
            #expect(expected == created)
            if serverVersion(f.server, atLeast: 2, 12) {
                #expect(error.isWrongLastSequence)
            } else {
                #expect(error.errCode == 10071)
            }
            #expect(error.code == 400)
            #expect(try await kv.get("lock").string == "owner-1b")

            // A deleted key may be created again; a delete can be conditional too.
            await #expect(throws: KeyValueError.self) { try await kv.delete("lock", lastRevision: created) }
            try await kv.delete("lock", lastRevision: updated)
            let again = try await kv.create("lock", "owner-3")
            #expect(try await kv.get("lock").revision == again)
            try await kv.purge("lock")
            try await kv.create("lock", "owner-4")
            #expect(try await kv.get("lock").string == "owner-4")
        }
    }

    @Test func keysListsLiveKeysOnly() async throws {
        try await withJetStream { f in
            let kv = try await f.js.createKeyValue(KeyValueConfig(bucket: "k", history: 3))
            #expect(try await kv.keys() == [])
            for key in ["a", "b.c", "b.d", "e/f=g", "h_i-j"] { try await kv.put(key, "v-\(key)") }
            try await kv.put("a", "again")
            try await kv.delete("b.d")
            try await kv.put("gone", "x")
            try await kv.purge("gone")
            #expect(Set(try await kv.keys()) == ["a", "b.c", "e/f=g", "h_i-j"])
            #expect(try await kv.keys(matching: "b.*") == ["b.c"])
        }
    }

    @Test func watchDeliversInitialValuesThenUpdatesAndDeletes() async throws {
        try await withJetStream { f in
            let kv = try await f.js.createKeyValue(KeyValueConfig(bucket: "w", history: 5))
            try await kv.put("one", "1")
            try await kv.put("two", "2")
            try await kv.put("one", "1b")
            let watcher = try await kv.watch()
            try await withTimeLimit(.seconds(15), "watch events") {
                var iterator = watcher.makeAsyncIterator()
                let first = try await iterator.next()
                let second = try await iterator.next()
                #expect(first?.entry?.key == "two" && first?.entry?.string == "2")
                #expect(second?.entry?.key == "one" && second?.entry?.string == "1b")
                #expect(try await iterator.next() == .initialValuesDone)

                try await kv.put("three", "3")
                let live = try await iterator.next()?.entry
                #expect(live?.key == "three" && live?.string == "3" && live?.operation == .put)
                try await kv.delete("one")
                let deleted = try await iterator.next()?.entry
                #expect(deleted?.key == "one" && deleted?.operation == .delete)
                try await kv.purge("two")
                let purged = try await iterator.next()?.entry
                #expect(purged?.key == "two" && purged?.operation == .purge)
                try await kv.update("three", "3b", revision: live?.revision ?? 0)
                #expect(try await iterator.next()?.entry?.string == "3b")
            }
            await watcher.stop()
        }
    }

    @Test func watchOptions() async throws {
        try await withJetStream { f in
            let kv = try await f.js.createKeyValue(KeyValueConfig(bucket: "wo", history: 5))
            // Empty bucket: the marker comes right away.
            let empty = try await kv.watch()
            #expect(try await collect(empty, count: 1) == [.initialValuesDone])
            try await kv.put("cfg.a", "1")
            try await kv.put("cfg.a", "2")
            try await kv.put("cfg.b", "3")
            try await kv.put("other", "4")
            try await kv.delete("cfg.b")
            let live = try await collect(empty, count: 5)
            #expect(live.compactMap(\.entry?.key) == ["cfg.a", "cfg.a", "cfg.b", "other", "cfg.b"])
            await empty.stop()

            let history = try await kv.watch("cfg.*", includeHistory: true)
            let all = try await collect(history, count: 5)
            #expect(all.compactMap(\.entry?.string) == ["1", "2", "3", ""])
            #expect(all.last == .initialValuesDone)
            await history.stop()

            let noDeletes = try await kv.watch("cfg.>", ignoreDeletes: true, headersOnly: true)
            let live2 = try await collect(noDeletes, count: 2)
            #expect(live2.first?.entry?.key == "cfg.a")
            #expect(live2.first?.entry?.value.readableBytes == 0)
            #expect(live2.last == .initialValuesDone)
            await noDeletes.stop()

            let updates = try await kv.watch(updatesOnly: true)
            var iterator = updates.makeAsyncIterator()
            #expect(try await iterator.next() == .initialValuesDone)
            try await kv.put("fresh", "5")
            #expect(try await iterator.next()?.entry?.key == "fresh")
            await updates.stop()
            #expect(try await iterator.next() == nil)
        }
    }

    @Test func watcherSurvivesServerRestart() async throws {
        try await withJetStream { f in
            let kv = try await f.js.createKeyValue(KeyValueConfig(bucket: "rs"))
            try await kv.put("k", "before")
            let watcher = try await kv.watch(idleHeartbeat: .milliseconds(200))
            let value = try await withTimeLimit(.seconds(30), "update after restart") {
                var iterator = watcher.makeAsyncIterator()
                #expect(try await iterator.next()?.entry?.string == "before")
                #expect(try await iterator.next() == .initialValuesDone)
                try await f.server.restart()
                try await waitFor(timeout: .seconds(10)) { f.client.isConnected }
                _ = try await waitForValue(timeout: .seconds(10)) { try? await kv.put("k", "after") }
                return try await iterator.next()?.entry?.string
            }
            #expect(value == "after")
            await watcher.stop()
        }
    }

    @Test func badNamesAreRefusedBeforeSending() async throws {
        try await withJetStream { f in
            for bucket in ["", "a.b", "a b", "a*", "a>", "ü"] {
                await #expect(throws: KeyValueError.invalidBucketName(bucket)) {
                    try await f.js.createKeyValue(KeyValueConfig(bucket: bucket))
                }
                await #expect(throws: KeyValueError.invalidBucketName(bucket)) { try await f.js.keyValue(bucket) }
            }
            await #expect(throws: KeyValueError.self) { try await f.js.createKeyValue(KeyValueConfig(bucket: "h", history: 65)) }
            let kv = try await f.js.createKeyValue(KeyValueConfig(bucket: "names"))
            for key in ["", ".a", "a.", "a..b", "a b", "a*", "a.>", "k\r\n", "ключ", "a:b", "$x"] {
                await #expect(throws: KeyValueError.invalidKey(key)) { try await kv.put(key, "v") }
                await #expect(throws: KeyValueError.invalidKey(key)) { try await kv.get(key) }
            }
            await #expect(throws: KeyValueError.invalidKey("a.>.b")) { try await kv.watch("a.>.b") }
            #expect(try await kv.info().state.messages == 0)
            for key in ["a", "a.b.c", "A-Z_0/9=x", "_"] { try await kv.put(key, "ok") }
            #expect(try await kv.info().state.messages == 4)
        }
    }

    @Test func missingBucketIsTypedNotFound() async throws {
        try await withJetStream { f in
            var js = f.js
            js.timeout = .seconds(1)  // a direct get on a deleted stream goes unanswered
            let kv = try await js.createKeyValue(KeyValueConfig(bucket: "tmp"))
            try await f.js.deleteKeyValue("tmp")
            await #expect(throws: KeyValueError.bucketNotFound("tmp")) { try await kv.put("a", "1") }
            await #expect(throws: KeyValueError.bucketNotFound("tmp")) { try await kv.get("a") }
            await #expect(throws: KeyValueError.bucketNotFound("tmp")) { try await kv.watch() }
            await #expect(throws: KeyValueError.bucketNotFound("tmp")) { try await kv.keys() }
            await #expect(throws: KeyValueError.bucketNotFound("nothere")) { try await f.js.keyValue("nothere") }
        }
    }
}
