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

    /// A leaf node server attached to a cluster whose JetStream has a domain: a client on the
    /// leaf makes and writes an R3 bucket with no domain named (`default_js_domain`), and a
    /// client on the cluster reads it; messages cross the leaf both ways.
    @Test func aClientOnALeafUsesTheClustersJetStream() async throws {
        try await withNATSCluster(size: 3, jetStreamDomain: "hub") { cluster in
            let leaf = try await cluster.startLeaf(attachedTo: cluster.servers[0])
            defer { leaf.stop() }
            try await withConnectedClient(to: leaf) { edge in
                let bucket = try await edge.jetStream().createKeyValue(KeyValueConfig(bucket: "edge", replicas: 3))
                _ = try await bucket.put("k", Array("from the edge".utf8))
                try await withConnectedClient(to: cluster.servers[2]) { core in
                    #expect(String(buffer: try await core.jetStream().keyValue("edge").get("k").value) == "from the edge")
                    let hello = try await core.subscribe(to: "edge.hello")
                    try await core.flush()
                    try await waitFor(timeout: .seconds(5), "a message crosses the leaf") {
                        try? await edge.publish("hi", to: "edge.hello")
                        try? await edge.flush()
                        return hello.pendingMessages > 0
                    }
                }
            }
        }
    }
}
