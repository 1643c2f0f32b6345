import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NATSTestSupport
import NATSWire
import NIOCore
import Testing

/// Request/reply against a real nats-server: the muxed inbox, no responders, timeouts,
/// headers and cancellation.
@Suite struct RequestClientTests {
    /// A responder on its own connection. It echoes the payload and headers (adding
    /// `X-Responder`) and records the reply subject of every request; `silent` ones record only.
    struct Responder {
        let client: NATSClient
        let replySubjects = Recorded<String>()
        let requests = Recorded<NATSMessage>()
        let task: Task<Void, Never>

        init(_ server: NATSServer, subject: String, silent: Bool = false) async throws {
            let client = try await server.connectedClient()
            let sub = try await client.subscribe(to: subject)
            try await client.flush()
            let replySubjects = self.replySubjects
            let requests = self.requests
            self.client = client
            self.task = Task {
                for await message in sub {
                    requests.append(message)
                    guard let reply = message.replyTo else { continue }
                    replySubjects.append(reply)
                    if silent { continue }
                    var headers = message.headers ?? NATSHeaders()
                    headers.append("X-Responder", "echo")
                    try? await client.publish(message.payload, to: reply, headers: headers)
                }
            }
        }

        func stop() async {
            task.cancel()
            await client.close()
        }
    }

    @Test func simpleRequestGetsTheReply() async throws {
        try await withNATSServer(jetStream: false) { server in
            let responder = try await Responder(server, subject: "svc.echo")
            let client = try await server.connectedClient()
            try await withTeardown({ await client.close(); await responder.stop() }) {

                let reply = try await client.request("hello", to: "svc.echo", timeout: .seconds(2))
                #expect(reply.string == "hello")
                #expect(reply.headers?["X-Responder"] == "echo")
                let replyTo = try #require(responder.replySubjects.all.first)
                #expect(replyTo.hasPrefix("_INBOX."))
                #expect(reply.subject == replyTo)
            }
        }
    }

    @Test func thousandConcurrentRequestsShareOneInbox() async throws {
        // The server picks its monitoring port and reports it in its ports file.
        try await withNATSServer(jetStream: false, monitoring: true) { server in
            let monitorPort = try #require(server.monitoringPort, "nats-server reported no monitoring port")
            let responder = try await Responder(server, subject: "svc.many")
            let client = try await server.connectedClient { $0.name = "muxed-requester" }
            try await withTeardown({ await client.close(); await responder.stop() }) {

                let count = 1000
                let answers = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                    for index in 0..<count {
                        group.addTask {
                            let reply = try await client.request("payload-\(index)-\(index * 7)", to: "svc.many", timeout: .seconds(8))
                            return (index, reply.string)
                        }
                    }
                    var answers: [Int: String] = [:]
                    for try await (index, answer) in group { answers[index] = answer }
                    return answers
                }
                #expect(answers.count == count)
                for index in 0..<count {
                    #expect(answers[index] == "payload-\(index)-\(index * 7)", "request \(index) got another's answer")
                }

                // Every reply subject is `<one inbox>.<token>`, tokens unique.
                let replySubjects = responder.replySubjects.all
                #expect(replySubjects.count == count)
                #expect(Set(replySubjects).count == count)
                let prefixes = Set(replySubjects.map { subject in String(subject[..<subject.lastIndex(of: ".")!]) })
                #expect(prefixes.count == 1, "reply subjects use \(prefixes.count) inboxes: \(prefixes.prefix(3))")

                // The server sees exactly one subscription on the requesting connection: the inbox wildcard.
                let connz = try await fetchJSON("http://127.0.0.1:\(monitorPort)/connz?subs=1")
                let connections = try #require(connz["connections"] as? [[String: Any]])
                let requester = try #require(connections.first { $0["name"] as? String == "muxed-requester" })
                #expect(requester["subscriptions"] as? Int == 1)
                let subjects = requester["subscriptions_list"] as? [String] ?? []
                #expect(subjects == ["\(prefixes.first ?? "?").*"])
            }
        }
    }

    @Test func noRespondersFailsFast() async throws {
        try await withNATSServer(jetStream: false) { server in
            try await withConnectedClient(to: server) { client in

                let (result, elapsed) = await timed {
                    try await client.request("anyone?", to: "nobody.listens", timeout: .seconds(30))
                }
                #expect(throws: NATSError.noResponders(subject: "nobody.listens")) { try result.get() }
                #expect(elapsed < .seconds(10), "no-responders took \(elapsed); it must not wait for the timeout")
                // The client is still usable afterwards.
                let sub = try await client.subscribe(to: "after.noresponders")
                try await client.publish("ok", to: "after.noresponders")
                #expect(try await collect(sub, count: 1).first?.string == "ok")
            }
        }
    }

    @Test func silentResponderTimesOut() async throws {
        try await withNATSServer(jetStream: false) { server in
            let responder = try await Responder(server, subject: "svc.silent", silent: true)
            let client = try await server.connectedClient()
            try await withTeardown({ await client.close(); await responder.stop() }) {

                let (result, elapsed) = await timed {
                    try await client.request("wait", to: "svc.silent", timeout: .milliseconds(300))
                }
                #expect(throws: NATSError.timeout(operation: "request to 'svc.silent'", seconds: 0.3)) { try result.get() }
                #expect(elapsed >= .milliseconds(290))
                #expect(elapsed < .seconds(10))
                #expect(responder.requests.count == 1)
            }
        }
    }

    @Test func tinyTimeoutsAlwaysEndTheRequest() async throws {
        try await withNATSServer(jetStream: false) { server in
            let responder = try await Responder(server, subject: "svc.tiny", silent: true)
            let client = try await server.connectedClient()
            try await withTeardown({ await client.close(); await responder.stop() }) {

                var hung = 0
                var hungAttempt = -1
                for attempt in 0..<300 {
                    let timeout: Duration = attempt.isMultiple(of: 2) ? .zero : .nanoseconds(1)
                    do {
                        let outcome = try await withTimeLimit(.seconds(1), "request \(attempt)") { () async -> String in
                            do {
                                _ = try await client.request("x", to: "svc.tiny", timeout: timeout)
                                return "reply"
                            } catch {
                                return "\(error)"
                            }
                        }
                        #expect(outcome.contains("timed out"), "request \(attempt) ended with \(outcome)")
                    } catch is TimeLimitExceeded {
                        hung += 1
                        hungAttempt = attempt
                    }
                    if hung > 0 { break }
                }
                #expect(hung == 0, """
                    request \(hungAttempt) (timeout \(hungAttempt.isMultiple(of: 2) ? "0" : "1 ns")) never ended: \
                    its timer fired before it was registered
                    """)
            }
        }
    }

    @Test func customInboxPrefix() async throws {
        try await withNATSServer(jetStream: false) { server in
            let responder = try await Responder(server, subject: "svc.prefix")
            let client = try await server.connectedClient { $0.inboxPrefix = "_MY.APP.INBOX" }
            try await withTeardown({ await client.close(); await responder.stop() }) { () async throws in

                for index in 0..<5 {
                    #expect(try await client.request("p\(index)", to: "svc.prefix", timeout: .seconds(2)).string == "p\(index)")
                }
                let replySubjects = responder.replySubjects.all
                #expect(replySubjects.count == 5)
                #expect(replySubjects.allSatisfy { $0.hasPrefix("_MY.APP.INBOX.") }, "\(replySubjects)")
                #expect(client.newInbox().hasPrefix("_MY.APP.INBOX."))
            }
        }
    }

    @Test func requestWithHeaders() async throws {
        try await withNATSServer(jetStream: false) { server in
            let responder = try await Responder(server, subject: "svc.headers")
            let client = try await server.connectedClient()
            try await withTeardown({ await client.close(); await responder.stop() }) {

                var headers = NATSHeaders()
                headers.append("X-Request-Id", "r-42")
                headers.append("X-Multi", "a")
                headers.append("X-Multi", "b")
                let reply = try await client.request("with headers", to: "svc.headers", headers: headers, timeout: .seconds(2))
                #expect(reply.string == "with headers")
                #expect(reply.headers?["X-Request-Id"] == "r-42")
                #expect(reply.headers?.values(for: "X-Multi") == ["a", "b"])
                #expect(reply.headers?["X-Responder"] == "echo")
                #expect(reply.status == nil)
                // What the responder saw.
                let request = try #require(responder.requests.all.first)
                #expect(request.headers == headers)

                // Empty payload, headers only.
                let headersOnly = try await client.request(ByteBuffer(), to: "svc.headers", headers: NATSHeaders(["Only": "h"]), timeout: .seconds(2))
                #expect(headersOnly.payload.readableBytes == 0)
                #expect(headersOnly.headers?["Only"] == "h")
            }
        }
    }

    @Test func cancellingTheRequestingTaskEndsTheRequest() async throws {
        try await withNATSServer(jetStream: false) { server in
            let responder = try await Responder(server, subject: "svc.slow", silent: true)
            let client = try await server.connectedClient()
            try await withTeardown({ await client.close(); await responder.stop() }) {

                let task = Task { try await client.request("slow", to: "svc.slow", timeout: .seconds(30)) }
                // The request is in flight once the responder has it.
                try await waitFor(timeout: .seconds(3), "the request reaches the responder") { responder.requests.count == 1 }
                let (result, elapsed) = await timed {
                    task.cancel()
                    return try await task.value
                }
                #expect(throws: CancellationError.self) { try result.get() }
                #expect(elapsed < .seconds(10), "cancellation took \(elapsed)")

                // The client keeps working, and the muxed inbox still routes replies.
                let echo = try await Responder(server, subject: "svc.after")
                try await withTeardown({ await echo.stop() }) { () async throws in
                    #expect(try await client.request("again", to: "svc.after", timeout: .seconds(2)).string == "again")
                }
            }
        }
    }

    @Test func requestFromAnAlreadyCancelledTaskEndsAtOnce() async throws {
        try await withNATSServer(jetStream: false) { server in
            let responder = try await Responder(server, subject: "svc.never", silent: true)
            let client = try await server.connectedClient()
            try await withTeardown({ await client.close(); await responder.stop() }) {

                let task = Task { () async throws -> NATSMessage in
                    withUnsafeCurrentTask { $0?.cancel() }
                    return try await client.request("late", to: "svc.never", timeout: .seconds(30))
                }
                let (result, elapsed) = await timed { try await task.value }
                #expect(throws: CancellationError.self) { try result.get() }
                #expect(elapsed < .seconds(10), "a request in a cancelled task waited \(elapsed) instead of ending at once")
            }
        }
    }
}

/// GETs a JSON object (the server's monitoring endpoints).
func fetchJSON(_ url: String) async throws -> [String: Any] {
    let (data, _) = try await URLSession.shared.data(from: URL(string: url)!)
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}
