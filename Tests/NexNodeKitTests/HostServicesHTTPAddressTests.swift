import Foundation
import NATSTestSupport
import NATSWire
import Testing
@testable import NexNodeKit
import NexWorkloads

/// Defect 6 of issue 10: a function read the NATS monitor's `/connz` through the `http` host
/// service. Each test points a function's request at a real HTTP server on loopback, in every
/// spelling, and checks that it was refused and that the server saw nothing.
@Suite("Host services: http refuses loopback, private and metadata addresses")
struct HostServicesHTTPAddressTests {
    func withServer(
        _ configuration: HostServicesConfiguration = HostServicesConfiguration(),
        _ body: (HostServicesHarness, LocalHTTPServer) async throws -> Void
    ) async throws {
        let http = try await LocalHTTPServer.start()
        defer { http.stop() }
        try await withHostServices(configuration) { hs in try await body(hs, http) }
    }

    @Test func loopbackInEverySpellingIsRefusedByDefault() async throws {
        try await withServer { hs, http in
            let port = http.port
            let urls = [
                "http://127.0.0.1:\(port)/text",
                "http://localhost:\(port)/text",
                "http://LocalHost:\(port)/text",
                "http://[::1]:\(port)/text",
                "http://[::ffff:127.0.0.1]:\(port)/text",
                "http://[::ffff:7f00:1]:\(port)/text",
                "http://0x7f000001:\(port)/text",
                "http://2130706433:\(port)/text",
                "http://127.1:\(port)/text",
                "http://0177.0.0.1:\(port)/text",
                "http://0.0.0.0:\(port)/text",
                "http://127.0.0.2:\(port)/text",
            ]
            for url in urls {
                for method in ["get", "post"] {
                    let reply = try await hs.call("http", method, headers: ["x-http-url": url], body: Array("x".utf8))
                    #expect(reply.code == 403 && reply.message.contains("not allowed"), "\(method) \(url): \(reply)")
                    #expect(try reply.json()["status"]?.intValue == 0)
                }
            }
            // A redirect from the (allowed) outside to loopback: here the first hop is refused
            // already; the next test allows the first hop.
            #expect(http.requests.isEmpty, "the server was reached: \(http.requests)")
        }
    }

    @Test func aRedirectFromAnAllowedHostToLoopbackIsRefused() async throws {
        var configuration = HostServicesConfiguration()
        configuration.http.allowedHosts = ["127.0.0.1"]
        try await withServer(configuration) { hs, http in
            for target in ["http://localhost:\(http.port)/echo", "http://[::1]:\(http.port)/echo",
                           "http://0x7f000001:\(http.port)/echo"] {
                let escaped = target.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                let reply = try await hs.call("http", "get", headers: ["x-http-url": http.url("/redirect?to=\(escaped)")])
                #expect(reply.code == 403 && reply.message.contains("is not allowed"), "\(target): \(reply)")
            }
            // Only the allowed first hops reached the server; the targets never did.
            #expect(http.requests.count == 3 && http.requests.allSatisfy { $0.hasPrefix("GET /redirect?") }, "\(http.requests)")
        }
    }

    @Test func theDefaultPolicyAlsoChecksRedirectTargets() async throws {
        // No allow-list: a redirect's target is resolved and checked like the first URL.
        let url = URL(string: "http://example.invalid/")!
        let service = HTTPHostService(settings: .init())
        await #expect(throws: HostServiceFailure.self) { _ = try await service.destination(of: url) }
        for host in ["127.0.0.1", "[::1]", "169.254.169.254", "10.1.2.3", "172.31.0.1", "192.168.1.1", "100.64.0.1",
                     "[fe80::1]", "[fd00::1]", "[::ffff:169.254.169.254]", "[64:ff9b::a00:1]", "[2002:7f00:1::]",
                     "224.0.0.1", "255.255.255.255", "0.0.0.0", "[::]"] {
            do {
                _ = try await service.destination(of: URL(string: "http://\(host)/")!)
                Issue.record("\(host) was allowed")
            } catch {
                #expect(error.code == 403, "\(host): \(error)")
            }
        }
        for host in ["8.8.8.8", "[2606:4700::1111]", "[::ffff:8.8.8.8]", "172.32.0.1", "100.128.0.1"] {
            #expect(try await service.destination(of: URL(string: "http://\(host)/")!) == [:], "\(host)")
        }
    }

    @Test func allowedHostsNamingLoopbackLetsItThrough() async throws {
        var configuration = HostServicesConfiguration()
        configuration.http.allowedHosts = ["127.0.0.1", "::1"]
        try await withServer(configuration) { hs, http in
            let reply = try await hs.call("http", "get", headers: ["x-http-url": http.url("/text")])
            let status = try reply.json()["status"]?.intValue
            #expect(reply.code == 200 && status == 200, "\(reply)")
            #expect(http.requests == ["GET /text"])
            // Named explicitly means by that name: other spellings of the same address stay out.
            let other = try await hs.call("http", "get", headers: ["x-http-url": http.url("/text", host: "localhost")])
            #expect(other.code == 403, "\(other)")
            #expect(http.requests == ["GET /text"])
        }
    }

    @Test func literalsNeedNoLookupAndOtherSpellingsAreResolvedBeforeTheCheck() async throws {
        // (The pinning of a resolved public name to the checked address is by construction,
        // AsyncHTTPClient's dnsOverride; a loopback-only test cannot stage a DNS rebinding.)
        let service = HTTPHostService(settings: .init())
        let literal = try await service.destination(of: URL(string: "http://93.184.215.14/")!)
        #expect(literal == [:])  // nothing to resolve, nothing to pin
        #expect(HTTPHostResolver.literal("0x7f000001") == nil)  // not a literal: getaddrinfo decides
        let resolved = try await HTTPHostResolver.resolve("0x7f000001")
        #expect(resolved.map(\.text) == ["127.0.0.1"])
    }
}
