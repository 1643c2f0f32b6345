import Foundation
@testable import NexTelemetry
import Testing
import Tracing

@Suite struct TraceParentTests {
    static let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test func aValidHeaderRoundTrips() throws {
        let parent = try #require(TraceParent(header: Self.valid))
        #expect(parent.traceIDHex == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(parent.spanIDHex == "00f067aa0ba902b7")
        #expect(parent.sampled)
        #expect(parent.header == Self.valid)
        #expect(TraceParent(header: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.sampled == false)
    }

    @Test(arguments: [
        "", "garbage", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // unknown version
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // all-zero span id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",   // short
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
        String(repeating: "0", count: 100_000),
    ])
    func hostileHeadersAreRefused(_ header: String) {
        #expect(TraceParent(header: header) == nil)
    }

    @Test func childrenKeepTheTraceAndGetTheirOwnSpan() {
        let root = TraceParent.random()
        let child = root.child()
        #expect(child.traceID == root.traceID && child.spanID != root.spanID && child.spanID.count == 8)
        #expect(root.traceID.count == 16 && root.sampled)
    }

    @Test(arguments: [
        ("http://127.0.0.1:4318", "127.0.0.1", 4318, "/v1/traces"),
        ("127.0.0.1:14532", "127.0.0.1", 14532, "/v1/traces"),
        ("http://collector/otlp/", "collector", 4318, "/otlp/v1/traces"),
        ("http://[::1]:9000/v1/traces", "::1", 9000, "/v1/traces"),
    ])
    func endpoints(_ url: String, _ host: String, _ port: Int, _ path: String) throws {
        let endpoint = try OTLPExporter.Endpoint(url: url)
        #expect(endpoint.host == host && endpoint.port == port && endpoint.path == path)
    }

    @Test(arguments: ["https://collector:4318", "grpc://x:4317", "http://:4318", "http://host:99999", "http://host:port"])
    func badEndpointsAreRefusedNamingTheURL(_ url: String) {
        #expect(throws: OTLPEndpointError.self) { try OTLPExporter.Endpoint(url: url) }
        do { _ = try OTLPExporter.Endpoint(url: url) } catch { #expect(error.description.contains(url)) }
    }

    @Test func theExportBodyIsOTLPJSON() throws {
        var attributes = SpanAttributes()
        attributes["text"] = "a \"quoted\"\nline"
        attributes["count"] = 3
        let span = FinishedSpan(name: "deploy", traceID: Array(repeating: 0xab, count: 16), spanID: Array(repeating: 1, count: 8),
                                parentSpanID: Array(repeating: 2, count: 8), kind: .server, start: 10, end: 20,
                                attributes: attributes, status: SpanStatus(code: .error, message: "no"), events: [])
        let body = OTLPJSON.body([span], serviceName: "nex-node", resource: ["nex.node_id": "N1"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        let resourceSpans = try #require((object["resourceSpans"] as? [[String: Any]])?.first)
        let spans = try #require(((resourceSpans["scopeSpans"] as? [[String: Any]])?.first?["spans"]) as? [[String: Any]])
        let encoded = try #require(spans.first)
        #expect(encoded["traceId"] as? String == String(repeating: "ab", count: 16))
        #expect(encoded["parentSpanId"] as? String == "0202020202020202")
        #expect(encoded["kind"] as? Int == 2)
        #expect(encoded["startTimeUnixNano"] as? String == "10")
        #expect((encoded["status"] as? [String: Any])?["code"] as? Int == 2)
        let values = (encoded["attributes"] as? [[String: Any]] ?? []).reduce(into: [String: [String: Any]]()) {
            $0[$1["key"] as! String] = $1["value"] as? [String: Any]
        }
        #expect(values["text"]?["stringValue"] as? String == "a \"quoted\"\nline")
        #expect(values["count"]?["intValue"] as? String == "3")
    }
}
