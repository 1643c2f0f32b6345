import Foundation
import NATSTestSupport
import NATSWire
import NexAgentBus
import Testing
@testable import NexNodeKit
import NexWorkloads

/// Attacks of one tenant's function on another tenant's data through host services (issue 10,
/// defects 4 and 5), performed over the real agent bus against a real JetStream: each asserts
/// that the other tenant's data did not come back and is unchanged.
@Suite("Host services: tenants are isolated")
struct HostServicesIsolationTests {
    /// `attacker` runs default/thief, `victim` acme/billing.
    static let tenants = ["attacker": ("default", "thief"), "victim": ("acme", "billing")]

    @Test func messagingCannotReachJetStreamKeyValueOrInboxes() async throws {
        var configuration = HostServicesConfiguration()
        configuration.messaging.requestTimeout = .milliseconds(500)
        configuration.messaging.deniedSubjects = ["secret.>"]
        try await withHostServices(configuration, running: Self.tenants) { hs in
            func victim(_ service: String, _ method: String, headers: [String: String] = [:], body: [UInt8] = [])
                async throws -> HostServiceReply
            {
                try await hs.call(service, method, headers: headers, body: body, agent: "victim", namespace: "acme", workload: "billing")
            }
            func attack(_ method: String, _ subject: String, body: String = "") async throws -> HostServiceReply {
                try await hs.call("messaging", method, headers: ["x-subject": subject], body: Array(body.utf8),
                                  agent: "attacker", namespace: "default", workload: "thief")
            }
            let stored = try await victim("kv", "set", headers: ["x-keyvalue-key": "balance"], body: Array("100".utf8))
            #expect(stored.code == 200, "\(stored)")
            let bucket = "hs_acme_billing_kv"
            let watcher = try await hs.workload.subscribe(to: "$KV.\(bucket).>")
            try await hs.workload.flush()

            // The review's three steps, and their variants: every one refused, nothing returned.
            let attempts: [(String, String, String)] = [
                ("request", "$JS.API.STREAM.NAMES", ""),
                ("request", "$JS.API.STREAM.LIST", ""),
                ("request", "$JS.API.STREAM.MSG.GET.KV_\(bucket)", #"{"last_by_subj":"$KV.\#(bucket).balance"}"#),
                ("request", "$JS.API.DIRECT.GET.KV_\(bucket).$KV.\(bucket).balance", ""),
                ("publish", "$KV.\(bucket).balance", "0"),
                ("request", "$KV.\(bucket).balance", "0"),
                ("request", "$JS.API.STREAM.PURGE.KV_\(bucket)", ""),
                ("publish", "$JS.API.STREAM.DELETE.KV_\(bucket)", ""),
                ("publish", "$O.anything.C.x", "x"),
                ("request", "$SYS.REQ.SERVER.PING", ""),
                ("publish", "$NEX.STOP.acme.node", ""),
                ("publish", "$G", ""),
                ("publish", "_INBOX.someone.else", "forged reply"),
                ("publish", "_INBOX", "forged reply"),
                ("publish", "_INBOX_custom.x", "forged reply"),
                ("publish", "_R_.abc.def", "forged reply"),
            ]
            for (method, subject, body) in attempts {
                let reply = try await attack(method, subject, body: body)
                #expect(reply.code == 403 && reply.message.contains("is not allowed"), "\(method) \(subject): \(reply)")
                #expect(reply.body.isEmpty, "\(method) \(subject) returned \(reply.text)")
                #expect(!reply.text.contains("KV_") && !reply.text.contains("100"))
            }
            // The workload connection's own inbox prefix is refused even when it is not _INBOX.
            #expect(HostServicesServer.reservedSubjectReason("my.inbox.abc", inboxPrefix: "my.inbox") != nil)
            #expect(HostServicesServer.reservedSubjectReason("my.inboxes", inboxPrefix: "my.inbox") == nil)
            #expect(HostServicesServer.reservedSubjectReason("orders.$new", inboxPrefix: "_INBOX") == nil)

            // denied_subjects add to the reserved ones.
            let secret = try await attack("publish", "secret.plans")
            #expect(secret.code == 403 && secret.message.contains("denied_subjects: secret.>"), "\(secret)")
            // Ordinary subjects still work.
            let ordinary = try await attack("publish", "orders.created", body: "ok")
            #expect(ordinary.code == 200, "\(ordinary)")

            // Nothing was written to the victim's bucket, and its value is intact.
            try await hs.workload.flush()
            try await Task.sleep(for: .milliseconds(200))
            #expect(watcher.pendingMessages == 0)
            let kv = try await hs.workload.jetStream().keyValue(bucket)
            let entry = try await kv.get("balance")
            #expect(entry.string == "100" && entry.revision == 1)
            let read = try await victim("kv", "get", headers: ["x-keyvalue-key": "balance"])
            #expect(read.code == 200 && read.text == "100")
        }
    }

    /// Defect 5: `hs_${namespace}_${workload_name}_kv` made one bucket of `acme_prod`/`cache`
    /// and `acme`/`prod_cache`.
    @Test func lookAlikeNamesGetTheirOwnBuckets() async throws {
        let running = ["prod": ("acme_prod", "cache"), "thief": ("acme", "prod_cache")]
        try await withHostServices(running: running) { hs in
            let stored = try await hs.call("kv", "set", headers: ["x-keyvalue-key": "token"], body: Array("secret".utf8),
                                           agent: "prod", namespace: "acme_prod", workload: "cache")
            #expect(stored.code == 200, "\(stored)")
            try await hs.call("objectstore", "put", headers: ["x-object-name": "report"], body: Array("numbers".utf8),
                              agent: "prod", namespace: "acme_prod", workload: "cache").expectOK()

            // The look-alike reads nothing of it and overwrites nothing.
            let read = try await hs.call("kv", "get", headers: ["x-keyvalue-key": "token"],
                                         agent: "thief", namespace: "acme", workload: "prod_cache")
            #expect(read.code == 404 && !read.text.contains("secret"), "\(read)")
            let keys = try await hs.call("kv", "keys", agent: "thief", namespace: "acme", workload: "prod_cache")
            #expect(keys.code == 200 && keys.text == "[]", "\(keys)")
            let object = try await hs.call("objectstore", "get", headers: ["x-object-name": "report"],
                                           agent: "thief", namespace: "acme", workload: "prod_cache")
            #expect(object.code == 404 && !object.text.contains("numbers"), "\(object)")
            try await hs.call("kv", "set", headers: ["x-keyvalue-key": "token"], body: Array("stolen".utf8),
                              agent: "thief", namespace: "acme", workload: "prod_cache").expectOK()

            let mine = try await hs.call("kv", "get", headers: ["x-keyvalue-key": "token"],
                                         agent: "prod", namespace: "acme_prod", workload: "cache")
            #expect(mine.code == 200 && mine.text == "secret", "\(mine)")
            let js = try hs.workload.jetStream()
            #expect(try await js.keyValue("hs_acme-5Fprod_cache_kv").get("token").string == "secret")
            #expect(try await js.keyValue("hs_acme_prod-5Fcache_kv").get("token").string == "stolen")
        }
    }
}

extension HostServiceReply {
    /// Records an issue unless the reply is a 200.
    func expectOK(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(code == 200, "\(code) \(message)", sourceLocation: sourceLocation)
    }
}
