import NexControl
import Testing
@testable import NexNodeKit
import NexWorkloads

@Suite struct ArtifactLocationTests {
    /// The error `text` raises; records an issue when it parses.
    static func refusal(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ArtifactError? {
        do {
            let location = try ArtifactLocation(validating: text)
            Issue.record("accepted: \(text) -> \(location)", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    /// The reason of the ``ArtifactError/invalidLocation(_:reason:)`` that `text` raises.
    static func reason(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        guard let error = refusal(text, sourceLocation: sourceLocation) else { return "" }
        guard case let .invalidLocation(location, reason) = error else {
            Issue.record("\(text): unexpected error \(error)", sourceLocation: sourceLocation)
            return ""
        }
        #expect(location == text, sourceLocation: sourceLocation)
        return reason
    }

    @Test func objectStoreLocations() throws {
        #expect(try ArtifactLocation(validating: "nats://NEXCLIFILES/echo") == .objectStore(bucket: "NEXCLIFILES", key: "echo"))
        #expect(try ArtifactLocation(validating: "nats://b_1-x/dir/sub/app.wasm") == .objectStore(bucket: "b_1-x", key: "dir/sub/app.wasm"))
        #expect(try ArtifactLocation(validating: "NATS://b/k") == .objectStore(bucket: "b", key: "k"))
        #expect(try ArtifactLocation(validating: "nats://b/my%20app%2Fv1%3F") == .objectStore(bucket: "b", key: "my app/v1?"))
        #expect(try ArtifactLocation(validating: "nats://b/caf%C3%A9") == .objectStore(bucket: "b", key: "café"))
        #expect(try ArtifactLocation(validating: "nats://b/k/") == .objectStore(bucket: "b", key: "k/"))
    }

    @Test func fileLocations() throws {
        #expect(try ArtifactLocation(validating: "file:///opt/workloads/echo") == .file(path: "/opt/workloads/echo"))
        #expect(try ArtifactLocation(validating: "File:///x") == .file(path: "/x"))
        #expect(try ArtifactLocation(validating: "file:///opt/my%20app") == .file(path: "/opt/my app"))
    }

    @Test func unknownSchemesNameTheAcceptedOnes() {
        for text in ["http://example.com/app", "https://x/y", "oci://registry/image", "s3://bucket/key"] {
            let error = Self.refusal(text)
            let description = error.map(String.init(describing:)) ?? ""
            #expect(description.contains(text), "\(description)")
            #expect(description.contains("nats://BUCKET/KEY"), "\(description)")
            #expect(description.contains("file:///absolute/path"), "\(description)")
        }
        #expect(Self.reason("").contains("empty"))
        #expect(Self.reason("/opt/app").contains("no scheme"))
        #expect(Self.reason("NEXCLIFILES/echo").contains("no scheme"))
    }

    @Test func objectStoreLocationsNeedABucketAndAKey() {
        #expect(Self.reason("nats://").contains("no key"))
        #expect(Self.reason("nats://bucket").contains("no key"))
        #expect(Self.reason("nats://bucket/").contains("the key is empty"))
        #expect(Self.reason("nats:///key").contains("the bucket is empty"))
        #expect(Self.reason("nats://buck et/k").contains("bucket 'buck et'"))
        #expect(Self.reason("nats://user@b/k").contains("letters, digits"))
        #expect(Self.reason("nats://b:4222/k").contains("letters, digits"))
        #expect(Self.reason("nats://b.c/k").contains("letters, digits"))
    }

    @Test func fileLocationsNeedAnAbsolutePathAndNoHost() {
        #expect(Self.reason("file://relative/path").contains("file:///absolute/path"))
        #expect(Self.reason("file://localhost/etc/app").contains("empty host"))
        #expect(Self.reason("file://").contains("file:///absolute/path"))
        #expect(Self.reason("file:///").contains("the path is empty"))
        #expect(Self.reason("file:////").contains("the path is empty"))
    }

    @Test func hostileLocationsAreRefused() {
        #expect(Self.reason("nats://b/k%zz").contains("bad percent escape"))
        #expect(Self.reason("nats://b/k%4").contains("bad percent escape"))
        #expect(Self.reason("nats://b/k%").contains("bad percent escape"))
        #expect(Self.reason("nats://b/k%00").contains("U+0"))
        #expect(Self.reason("file:///bin/sh%0A").contains("U+A"))
        #expect(Self.reason("nats://b/k%FF").contains("not UTF-8"))
        #expect(Self.reason("nats://b/k\n").contains("control character"))
        #expect(Self.reason("nats://b/k\u{0}x").contains("control character"))
        #expect(Self.reason("nats://b/k?version=2").contains("query or fragment"))
        #expect(Self.reason("file:///app#x").contains("query or fragment"))
    }

    @Test func veryLongLocationsAreRefusedAndShownShort() throws {
        let long = "nats://bucket/" + String(repeating: "k", count: 100_000)
        let error = Self.refusal(long)
        #expect(error.map { "\($0)" }?.contains("100014 bytes long; the limit is 4096") == true)
        #expect(error.map { "\($0)" }!.utf8.count < 400)
        let atLimit = "nats://b/" + String(repeating: "k", count: ArtifactLocation.maxLocationLength - 9)
        #expect(try ArtifactLocation(validating: atLimit) == .objectStore(bucket: "b", key: String(repeating: "k", count: 4087)))
        let longScheme = String(repeating: "x", count: 1000) + "://b/k"
        #expect((Self.refusal(longScheme).map { "\($0)" } ?? "").utf8.count < 800)
    }
}
