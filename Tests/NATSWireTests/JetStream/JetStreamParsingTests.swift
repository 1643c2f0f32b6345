import Foundation
import NIOCore
import Testing
@testable import NATSWire

@Suite struct JetStreamParsingTests {
    @Test func ackSubjectsOfBothLayoutsAreRead() throws {
        let old = NATSMessage(
            subject: "orders.eu", sid: 1, replyTo: "$JS.ACK.ORDERS.c1.2.41.7.1700000000123456789.5", headers: nil,
            payload: ByteBuffer(string: "x"))
        let v1 = try #require(JetStreamMessage(old))
        #expect(v1.stream == "ORDERS" && v1.consumer == "c1")
        #expect((v1.deliveries, v1.streamSequence, v1.consumerSequence, v1.pending) == (2, 41, 7, 5))
        #expect(abs(v1.timestamp.timeIntervalSince1970 - 1_700_000_000.123456789) < 1e-6)
        #expect(v1.domain == nil)

        var new = old
        new.replyTo = "$JS.ACK.hub.ACCHASH.ORDERS.c1.1.42.8.1700000000000000000.0.token"
        let v2 = try #require(JetStreamMessage(new))
        #expect(v2.domain == "hub" && v2.stream == "ORDERS" && v2.streamSequence == 42 && v2.pending == 0)
        new.replyTo = "$JS.ACK._.ACCHASH.ORDERS.c1.1.42.8.1700000000000000000.0"
        #expect(JetStreamMessage(new)?.domain == nil)

        for reply in [nil, "_INBOX.x", "$JS.ACK.S.c.1.2", "$JS.ACK.S.c.x.2.3.4.5"] {
            var message = old
            message.replyTo = reply
            #expect(JetStreamMessage(message) == nil, "\(reply ?? "nil")")
        }
    }

    @Test func rfc3339RoundTripsWithNanoseconds() throws {
        let date = try #require(RFC3339.parse("2024-02-29T23:59:58.123456789Z"))
        #expect(abs(date.timeIntervalSince1970 - 1_709_251_198.123456789) < 1e-6)
        #expect(RFC3339.parse("2024-02-29T23:59:58Z")?.timeIntervalSince1970 == 1_709_251_198)
        #expect(RFC3339.parse("2024-03-01T01:59:58.5+02:00")?.timeIntervalSince1970 == 1_709_251_198.5)
        #expect(RFC3339.parse("2024-02-29T23:59:58.123456+00:00") != nil)  // Python's isoformat()
        for bad in ["", "2024-02-29", "2024-02-29T23:59:58", "2024-13-01T00:00:00Z", "2024-02-29T23:59:58.Z", "x"] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_709_251_198)) == "2024-02-29T23:59:58Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_709_251_198.25)) == "2024-02-29T23:59:58.25Z")
        let now = Date()
        #expect(abs(try #require(RFC3339.parse(RFC3339.format(now))).timeIntervalSince(now)) < 1e-5)
    }

    @Test func digestsAndNamesUseGosPaddedURLEncoding() {
        #expect(ObjectStore.paddedBase64URL(Array("a".utf8)) == "YQ==")
        #expect(ObjectStore.paddedBase64URL([0xFB, 0xFF]) == "-_8=")
        let digest = Digest.sha256(Array("hello".utf8))
        let text = "SHA-256=" + ObjectStore.paddedBase64URL(digest)
        #expect(text == "SHA-256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=")
        #expect(ObjectStore.decodeDigest(text) == digest)
        #expect(ObjectStore.decodeDigest("sha-256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ") == digest)
        #expect(ObjectStore.decodeDigest("MD5=abc") == nil)
        #expect(ObjectStore.decodeDigest("SHA-256=YQ==") == nil)
    }

    @Test func keyAndBucketNameRules() {
        for key in ["a", "a.b", "A-Z_0/9=x", "a.b.c.d"] { #expect(throws: Never.self) { try KeyValue.validateKey(key) } }
        for key in ["", ".", "a.", ".a", "a..b", "*", ">", "a b", "ü", "a:b"] {
            #expect(throws: KeyValueError.invalidKey(key)) { try KeyValue.validateKey(key) }
        }
        for pattern in [">", "*", "a.*", "a.>", "*.b.>"] {
            #expect(throws: Never.self) { try KeyValue.validatePattern(pattern) }
        }
        for pattern in ["a.>.b", ">.a", "a*", "a.**"] {
            #expect(throws: KeyValueError.invalidKey(pattern)) { try KeyValue.validatePattern(pattern) }
        }
        #expect(throws: Never.self) { try KeyValue.validateBucket("A-b_9") }
        #expect(throws: KeyValueError.invalidBucketName("a.b")) { try KeyValue.validateBucket("a.b") }
    }

    @Test func kvStreamConfigMatchesOtherClients() throws {
        let config = try KeyValueConfig(bucket: "b", history: 3, ttl: .seconds(30)).streamConfig()
        #expect(config.name == "KV_b" && config.subjects == ["$KV.b.>"])
        #expect(config.maxMessagesPerSubject == 3 && config.maxAge == .seconds(30))
        #expect(config.duplicateWindow == .seconds(30))
        #expect(config.allowRollupHeaders && config.denyDelete && config.allowDirect && config.discard == .new)
        #expect(try KeyValueConfig(bucket: "b").streamConfig().duplicateWindow == .seconds(120))
        #expect(throws: KeyValueError.self) { try KeyValueConfig(bucket: "b", history: 0).streamConfig() }
        let objects = try ObjectStoreConfig(bucket: "o").streamConfig()
        #expect(objects.subjects == ["$O.o.C.>", "$O.o.M.>"])
        #expect(objects.allowRollupHeaders && objects.allowDirect && objects.discard == .new)
    }
}
