import NexAgentBus
import Foundation
import NATSWire
import Testing
@testable import NexNodeKit
import NexWorkloads

@Suite struct HostServicesConfigurationTests {
    static func parse(_ json: String) throws -> HostServicesConfiguration {
        try HostServicesConfiguration.parse(services: JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)))
    }

    static func refusal(_ json: String, sourceLocation: SourceLocation = #_sourceLocation) -> NodeConfigurationError? {
        do {
            let configuration = try parse(json)
            Issue.record("accepted: \(json) -> \(configuration)", sourceLocation: sourceLocation)
        } catch let error as NodeConfigurationError {
            return error
        } catch {
            Issue.record("not a NodeConfigurationError: \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    @Test func anHTTPCAFileThatDoesNotLoadIsRefusedByName() {
        let error = Self.refusal(#"{"http": {"config": {"ca_file": "/nonexistent/ca.pem"}}}"#)
        #expect(error?.key == "host_services.services.http.config.ca_file", "\(String(describing: error))")
        #expect("\(String(describing: error))".contains("/nonexistent/ca.pem"))
    }

    @Test func defaultsAreNexs() throws {
        let configuration = HostServicesConfiguration()
        #expect(configuration.enabledServices == ["http", "kv", "messaging", "objectstore"])
        #expect(configuration.keyValue.bucketTemplate == "hs_${namespace}_${workload_name}_kv")
        #expect(configuration.keyValue.maxBytes == 524_288)
        #expect(configuration.objectStore.bucketTemplate == "hs_${namespace}_${workload_name}_obj")
        #expect(configuration.objectStore.maxBytes == 524_288)
        #expect(configuration.messaging.requestTimeout == .seconds(5))
        #expect(configuration.http.timeout == .milliseconds(2500))
        #expect(configuration.http.maxResponseBytes == 1_048_576)
        #expect(configuration.http.allowedHosts.isEmpty)
        #expect(try Self.parse("{}") == configuration)
        #expect(try HostServicesConfiguration.parse(services: nil) == configuration)
        #expect(try Self.parse(#"{"kv": null}"#) == configuration)
    }

    @Test func everyKeyIsRead() throws {
        let configuration = try Self.parse("""
        {
          "kv": {"enabled": true, "config": {"bucket_name": "KV-${NAMESPACE}_${workload_name}", "max_bytes": 1000, "jit_provision": false}},
          "objectstore": {"enabled": false, "config": {"bucket_name": "obj_${Workload_Name}__${namespace}", "max_bytes": -1}},
          "messaging": {"config": {"request_timeout_ms": 250, "denied_subjects": ["secret.>"]}},
          "http": {"config": {"timeout_ms": 1000, "max_response_bytes": 4096, "allowed_hosts": ["API.example.com", "127.0.0.1"], "max_redirects": 0}}
        }
        """)
        #expect(configuration.enabledServices == ["http", "kv", "messaging"])
        #expect(configuration.keyValue.bucketTemplate == "KV-${NAMESPACE}_${workload_name}")
        #expect(configuration.keyValue.maxBytes == 1000)
        #expect(configuration.keyValue.jitProvision == false)
        #expect(configuration.objectStore.bucketTemplate == "obj_${Workload_Name}__${namespace}")
        #expect(configuration.objectStore.maxBytes == -1)
        #expect(configuration.messaging.requestTimeout == .milliseconds(250))
        #expect(configuration.messaging.deniedSubjects == ["secret.>"])
        #expect(configuration.http.timeout == .seconds(1))
        #expect(configuration.http.maxResponseBytes == 4096)
        #expect(configuration.http.allowedHosts == ["api.example.com", "127.0.0.1"])
        #expect(configuration.http.maxRedirects == 0)
    }

    @Test func badValuesAreRefusedWithTheKeyNamed() {
        let cases: [(String, String)] = [
            (#"{"ftp": {}}"#, "host_services.services.ftp"),
            (#"{"kv": {"enabled": "yes"}}"#, "host_services.services.kv.enabled"),
            (#"{"kv": {"config": {"bucket": "x"}}}"#, "host_services.services.kv.config.bucket"),
            (#"{"kv": {"config": {"bucket_name": "has.dots_${namespace}"}}}"#, "host_services.services.kv.config.bucket_name"),
            // Templates that could make one bucket of two workloads are refused.
            (#"{"kv": {"config": {"bucket_name": "shared"}}}"#, "host_services.services.kv.config.bucket_name"),
            (#"{"kv": {"config": {"bucket_name": "kv_${workload_name}"}}}"#, "host_services.services.kv.config.bucket_name"),
            (#"{"kv": {"config": {"bucket_name": "${namespace}${workload_name}"}}}"#, "host_services.services.kv.config.bucket_name"),
            (#"{"kv": {"config": {"bucket_name": "kv-${namespace}-${workload_name}"}}}"#, "host_services.services.kv.config.bucket_name"),
            (#"{"objectstore": {"config": {"bucket_name": "o_${namespace}_${workload_name}_${namespace}"}}}"#,
             "host_services.services.objectstore.config.bucket_name"),
            (#"{"kv": {"config": {"max_bytes": 0}}}"#, "host_services.services.kv.config.max_bytes"),
            (#"{"objectstore": {"config": {"max_bytes": "big"}}}"#, "host_services.services.objectstore.config.max_bytes"),
            (#"{"messaging": {"config": {"request_timeout_ms": 0}}}"#, "host_services.services.messaging.config.request_timeout_ms"),
            (#"{"messaging": {"config": {"denied_subjects": ["a..b"]}}}"#, "host_services.services.messaging.config.denied_subjects"),
            (#"{"http": {"config": {"timeout_ms": -5}}}"#, "host_services.services.http.config.timeout_ms"),
            (#"{"http": {"config": {"max_response_bytes": 1.5}}}"#, "host_services.services.http.config.max_response_bytes"),
            (#"{"http": {"config": {"allowed_hosts": ["https://x.com"]}}}"#, "host_services.services.http.config.allowed_hosts"),
            (#"{"http": {"extra": 1}}"#, "host_services.services.http.extra"),
            (#"[]"#, "host_services.services"),
        ]
        for (json, key) in cases {
            let error = Self.refusal(json)
            #expect(error?.key == key, "\(json): \(String(describing: error))")
        }
    }

    @Test func bucketNamesComeFromTheTemplate() {
        #expect(HostServiceBucketName.render("hs_${namespace}_${workload_name}_kv", namespace: "team", workloadName: "echo")
            == "hs_team_echo_kv")
        #expect(HostServiceBucketName.render("${NAMESPACE}_${Workload_Name}-$x-${other}", namespace: "a", workloadName: "b")
            == "a_b-$x-${other}")
        #expect(HostServiceBucketName.render("hs_${namespace}_${workload_name}_kv", namespace: "acme_prod", workloadName: "cache")
            == "hs_acme-5Fprod_cache_kv")
        #expect(HostServiceBucketName.render("hs_${namespace}_${workload_name}_kv", namespace: "acme", workloadName: "prod_cache")
            == "hs_acme_prod-5Fcache_kv")
        #expect(HostServiceBucketName.escape("my-fn.v2") == "my--fn-2Ev2")
        #expect(HostServiceBucketName.escape("é") == "-C3-A9")
        #expect(HostServiceBucketName.isValid("hs_team-echo_1"))
        #expect(!HostServiceBucketName.isValid("hs.team"))
        #expect(!HostServiceBucketName.isValid(""))
    }

    /// Defect 5 of issue 10: `acme_prod`/`cache` and `acme`/`prod_cache` shared one bucket.
    @Test func bucketNamesNeverCollide() {
        let parts = ["", "a", "b", "ab", "a_b", "a-b", "a--b", "a-5Fb", "a_", "_b", "-", "_", "--", "-5F", "5F", "a.b", "a b",
                     "prod", "acme", "acme_prod", "prod_cache", "cache", "é", "-C3-A9", "_-_", "x__y"]
        for template in ["hs_${namespace}_${workload_name}_kv", "${workload_name}_${namespace}", "p-${namespace}-_-${workload_name}"] {
            #expect(HostServiceBucketName.problem(with: template) == nil, "\(template)")
            var seen: [String: (String, String)] = [:]
            for namespace in parts {
                for workload in parts {
                    let name = HostServiceBucketName.render(template, namespace: namespace, workloadName: workload)
                    #expect(HostServiceBucketName.isValid(name), "\(name)")
                    if let other = seen[name] {
                        Issue.record("\(template): \(namespace)/\(workload) and \(other.0)/\(other.1) both make \(name)")
                    }
                    seen[name] = (namespace, workload)
                }
            }
        }
    }

    @Test func subjectsAreParsedStrictly() throws {
        let subject = try HostServiceSubject(parsing: "hostint.a1.rpc.team.echo.kv.get")
        #expect(subject == HostServiceSubject(agentID: "a1", namespace: "team", workloadName: "echo", service: "kv", method: "get"))
        for bad in ["hostint.a1.rpc.team.echo.kv", "hostint.a1.rpc.team..kv.get", "agentint.a1.rpc.team.echo.kv.get",
                    "hostint.a1.rpcx.team.echo.kv.get", "hostint.a1.rpc.team.echo.kv.get."] {
            #expect(throws: HostServiceFailure.self, "\(bad)") { try HostServiceSubject(parsing: bad) }
        }
        #expect(SubjectPattern.matches("$NEX.>", "$NEX.PING"))
        #expect(!SubjectPattern.matches("$NEX.>", "$NEX"))
        #expect(SubjectPattern.matches("a.*.c", "a.b.c"))
        #expect(!SubjectPattern.matches("a.*.c", "a.b"))
    }

    @Test func httpHeaderNamesAreCanonical() {
        #expect(HTTPHostService.canonicalName("content-type") == "Content-Type")
        #expect(HTTPHostService.canonicalName("X-MULTI-value") == "X-Multi-Value")
        #expect(HTTPHostService.canonicalName("etag") == "Etag")
    }
}
