import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import NIOCore
import Testing

/// Garbage on every subject a real node serves: each request gets an error envelope naming the
/// problem (or, for subjects that take no body, the normal answer), and the node keeps serving.
@Suite struct BadInputEndToEndTests {
    /// A raw reply envelope.
    struct Envelope {
        var type: String
        var data: Any?
        var error: String?

        init(_ message: NATSMessage) throws {
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(message.payload.readableBytesView)) as? [String: Any],
                "reply is not a JSON object: \(message.string.prefix(300))")
            type = try #require(object["type"] as? String, "no type in \(message.string.prefix(300))")
            data = object["data"]
            error = object["error"] as? String
        }
    }

    /// One bad request and what its error must mention.
    struct Case: CustomStringConvertible {
        var subject: String
        var body: [UInt8]
        var type: String
        var mentions: [String]
        var description: String { "\(subject) <- \(String(decoding: body.prefix(60), as: UTF8.self))" }
    }

    static func cases(node: String) -> [Case] {
        let deploy = "$NEX.DEPLOY.default.\(node)", stop = "$NEX.STOP.default.\(node)", auction = "$NEX.AUCTION"
        let run = ControlResponseType.run, stopped = ControlResponseType.stop, bid = ControlResponseType.auction
        func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
        let goodDeployFields = #""location":"file:///bin/true","workload_jwt":"a.b.c","environment":"","sender_public_key":"X","target_node":"N""#
        return [
            // Malformed JSON.
            Case(subject: deploy, body: bytes("{\"type\": "), type: run, mentions: ["DeployRequest", "malformed JSON"]),
            Case(subject: stop, body: bytes("not json at all"), type: stopped, mentions: ["StopRequest", "malformed JSON"]),
            Case(subject: auction, body: bytes("{tags: zone}"), type: bid, mentions: ["AuctionRequest", "malformed JSON"]),
            // Wrong types.
            Case(subject: deploy, body: bytes("{\"type\": 5, \(goodDeployFields)}"), type: run, mentions: ["'type'", "String"]),
            Case(subject: deploy, body: bytes("{\"type\": \"native\", \"essential\": \"yes\", \(goodDeployFields)}"),
                 type: run, mentions: ["'essential'", "Bool"]),
            Case(subject: deploy, body: bytes("{\"type\": \"native\", \"argv\": \"-v\", \(goodDeployFields)}"),
                 type: run, mentions: ["'argv'"]),
            Case(subject: stop, body: bytes(#"{"workload_id": 42, "workload_jwt": "a.b.c", "target_node": "N"}"#),
                 type: stopped, mentions: ["'workload_id'", "String"]),
            Case(subject: auction, body: bytes(#"{"tags": "zone=a"}"#), type: bid, mentions: ["'tags'"]),
            Case(subject: auction, body: bytes(#"{"workload_types": "wasm"}"#), type: bid, mentions: ["'workload_types'"]),
            Case(subject: deploy, body: bytes("[1, 2, 3]"), type: run, mentions: ["DeployRequest"]),
            // Missing fields.
            Case(subject: deploy, body: bytes("{}"), type: run, mentions: ["missing field"]),
            Case(subject: stop, body: bytes(#"{"workload_id": "w1"}"#), type: stopped, mentions: ["missing field 'workload_jwt'"]),
            // null.
            Case(subject: deploy, body: bytes("null"), type: run, mentions: ["null"]),
            Case(subject: stop, body: bytes("null"), type: stopped, mentions: ["null"]),
            Case(subject: auction, body: bytes("null"), type: bid, mentions: ["null"]),
            Case(subject: deploy, body: bytes("{\"type\": null, \(goodDeployFields)}"), type: run, mentions: ["'type'", "null"]),
            // Empty body where one is required.
            Case(subject: deploy, body: [], type: run, mentions: ["empty request body"]),
            Case(subject: stop, body: [], type: stopped, mentions: ["empty request body"]),
        ]
    }

    @Test func everyBadRequestGetsAnErrorEnvelopeNamingTheProblem() async throws {
        try await withNATSServer { server in
            try await withNode(server: server) { node in
                try await withControlClient(server) { nex in
                    let client = nex.connection

                    for bad in Self.cases(node: node.nodeID) {
                        let reply = try await client.request(ByteBuffer(bytes: bad.body), to: bad.subject, timeout: .seconds(3))
                        let envelope = try Envelope(reply)
                        #expect(envelope.type == bad.type, "\(bad)")
                        let error = try #require(envelope.error, "no error for \(bad): \(reply.string.prefix(300))")
                        for word in bad.mentions {
                            #expect(error.contains(word), "\(bad): error '\(error)' does not mention \(word)")
                        }
                        #expect(envelope.data as? String == "", "\(bad): data should be \"\" as in Nex 0.2")
                    }

                    // A valid stop for an unknown workload is refused with the id named.
                    let stop = try await client.request(
                        ByteBuffer(string: #"{"workload_id": "nope", "workload_jwt": "a.b.c", "target_node": "N"}"#),
                        to: "$NEX.STOP.default.\(node.nodeID)", timeout: .seconds(3))
                    #expect(try Envelope(stop).error?.contains("nope") == true)

                    // Subjects that take no body accept an empty body or a JSON object (ignored), and refuse
                    // anything else with the subject named, without acting on it (no lame duck here).
                    let noBody = [
                        ("$NEX.PING", ControlResponseType.ping),
                        ("$NEX.PING.\(node.nodeID)", ControlResponseType.ping),
                        ("$NEX.INFO.default.\(node.nodeID)", ControlResponseType.info),
                        ("$NEX.LAMEDUCK.\(node.nodeID)", ControlResponseType.lameDuck),
                        ("$NEX.WPING.default", ControlResponseType.ping),
                    ]
                    for (subject, type) in noBody {
                        for (garbage, problem) in [("{{{", "malformed JSON"), ("null", "null"), ("[1]", "JSON object"), ("\u{0}\u{1}", "JSON")] {
                            let reply = try Envelope(try await client.request(ByteBuffer(string: garbage), to: subject, timeout: .seconds(3)))
                            #expect(reply.type == type, "\(subject) <- \(garbage)")
                            let error = try #require(reply.error, "\(subject) <- \(garbage): no error")
                            #expect(error.contains(subject) && error.contains(problem), "\(subject) <- \(garbage): \(error)")
                        }
                    }
                    for subject in noBody.map(\.0).filter({ !$0.hasPrefix("$NEX.LAMEDUCK") && !$0.hasPrefix("$NEX.WPING") }) {
                        for body in ["", "{}", #"{"nexus": "x"}"#] {
                            let reply = try Envelope(try await client.request(ByteBuffer(string: body), to: subject, timeout: .seconds(3)))
                            #expect(reply.error == nil, "\(subject) <- '\(body)': \(reply.error ?? "")")
                        }
                    }
                    // Workload pings concern no workload here: silence, as in Nex 0.2, and no crash.
                    #expect(try await nex.workloadPing(namespace: "default", workload: "nothing", window: .milliseconds(300)).isEmpty)

                    // Still alive, still right.
                    #expect(node.isRunning)
                    let pong = try await nex.ping(node: node.nodeID)
                    #expect(pong.nodeID == node.nodeID)
                    #expect(pong.tags?["nex.lameduck"] == "false")
                }
            }
        }
    }

    @Test func oversizedBodiesAreRefusedWithTheSize() async throws {
        try await withNATSServer(config: "max_payload: 4MB") { server in
            try await withNode(server: server) { node in
                try await withControlClient(server) { nex in
                    let client = nex.connection
                    #expect(client.serverInfo?.maxPayload == 4 * 1024 * 1024)

                    // 2 MB of valid-looking JSON: refused on size before any decoding.
                    var big = Array(#"{"tags": {"zone": ""#.utf8)
                    big += [UInt8](repeating: UInt8(ascii: "a"), count: 2 * 1024 * 1024)
                    big += Array(#""}}"#.utf8)
                    let subjects = [
                        ("$NEX.DEPLOY.default.\(node.nodeID)", ControlResponseType.run),
                        ("$NEX.STOP.default.\(node.nodeID)", ControlResponseType.stop),
                        ("$NEX.AUCTION", ControlResponseType.auction),
                    ]
                    for (subject, type) in subjects {
                        let reply = try Envelope(try await client.request(ByteBuffer(bytes: big), to: subject, timeout: .seconds(5)))
                        #expect(reply.type == type)
                        let error = try #require(reply.error, "\(subject): no error")
                        #expect(error.contains("\(big.count) bytes"), "\(subject): \(error)")
                        #expect(error.contains("limit"), "\(subject): \(error)")
                    }
                    // Just under the limit is decoded (and refused for its content, not its size).
                    let fits = Array(#"{"tags": {"zone": ""#.utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 1000) + Array(#""}}"#.utf8)
                    let fitting = try await nex.auction(
                        try JSONDecoder().decode(AuctionRequest.self, from: Data(fits)), window: .milliseconds(300))
                    #expect(fitting.isEmpty)

                    #expect(try await nex.ping(node: node.nodeID).nodeID == node.nodeID)
                }
            }
        }
    }
}
