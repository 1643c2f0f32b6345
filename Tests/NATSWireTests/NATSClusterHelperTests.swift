import Foundation
import NATSTestSupport
import NATSWire
import NIOCore
import Testing

@Suite("NATSCluster test helper")
struct NATSClusterHelperTests {
    /// Three routed servers with clustered JetStream: an R3 bucket written through one server
    /// is read through another, and still after the first server (the one every route was
    /// dialled to) is killed and started again.
    @Test func threeServersServeAnR3BucketThatOutlivesTheLossOfOne() async throws {
        try await withNATSCluster(size: 3) { cluster in
            #expect(Set(cluster.urls).count == 3)
            let writer = try NATSClient(options: cluster.servers[1].testClientOptions())
            try await writer.connect()
            let bucket = try await writer.jetStream().createKeyValue(KeyValueConfig(bucket: "fleet", replicas: 3))
            _ = try await bucket.put("k", Array("v1".utf8))
            await writer.close()

            cluster.servers[0].stop()
            let reader = try NATSClient(options: cluster.servers[2].testClientOptions())
            try await reader.connect()
            let kv = try await reader.jetStream().keyValue("fleet")
            let entry = try await waitForValue(timeout: .seconds(15), "the bucket answers with two of three servers") {
                try? await kv.get("k")
            }
            #expect(String(buffer: entry.value) == "v1")
            try await cluster.servers[0].restart()
            try await cluster.waitUntilRouted()
            await reader.close()
        }
    }
}
