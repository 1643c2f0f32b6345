import NexAgentBus
import NexWorkloads
#if canImport(AsyncHTTPClient)
import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1

/// The `http` host service's wire: AsyncHTTPClient, with redirects followed here (so each hop
/// is checked) and automatic decompression off.
///
/// Every hop gets its own client whose `dnsOverride` pins the hop's host name to the address
/// that was checked, so the connection goes exactly there (TLS still verifies the name). The
/// price is no connection reuse between calls.
final class HTTPTransport: Sendable {
    let settings: HostServicesConfiguration.HTTPSettings

    init(settings: HostServicesConfiguration.HTTPSettings) {
        self.settings = settings
    }

    /// Whether this node can make HTTP requests at all.
    static let isAvailable = true

    static func isTimeout(_ error: any Error) -> Bool {
        guard let error = error as? HTTPClientError else { return false }
        return error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout
    }

    private func makeClient(pinning dnsOverride: [String: String]) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,  // followed here, so each hop is checked
            // Connection attempts are retried until the connect timeout: stop them before the
            // whole deadline so a refused connection is reported as such, not as a timeout.
            timeout: .init(connect: .nanoseconds(settings.timeout.nanoseconds * 4 / 5)),
            decompression: .disabled)
        configuration.httpVersion = .automatic
        configuration.dnsOverride = dnsOverride
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// One hop on its own pinned client, shut down when the hop is over.
    private func exchange(
        _ request: HTTPClientRequest, pinning dnsOverride: [String: String], deadline: NIODeadline
    ) async throws -> (status: Int, headers: HTTPHeaders, body: [UInt8]) {
        let client = makeClient(pinning: dnsOverride)
        do {
            let response = try await client.execute(request, deadline: deadline)
            let status = Int(response.status.code)
            let body = Array(try await response.body.collect(upTo: settings.maxResponseBytes).readableBytesView)
            try? await client.shutdown()
            return (status, response.headers, body)
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// Follows redirects (up to `max_redirects`, each hop checked and pinned), then reads the body.
    func fetch(
        method name: String, url: URL, headers fields: [(String, String)], body: [UInt8]?, deadline: NIODeadline,
        check: @Sendable (URL) async throws(HostServiceFailure) -> [String: String]
    ) async throws -> [UInt8] {
        var url = url
        var method = HTTPMethod(rawValue: name.uppercased())
        var headers = HTTPHeaders(fields)
        var body = body
        var hops = 0
        while true {
            let pin = try await check(url)
            var request = HTTPClientRequest(url: url.absoluteString)
            request.method = method
            request.headers = headers
            if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
            let response = try await exchange(request, pinning: pin, deadline: deadline)
            let status = response.status
            if [301, 302, 303, 307, 308].contains(status), hops < settings.maxRedirects,
               let location = response.headers.first(name: "Location"),
               let next = URL(string: location, relativeTo: url)?.absoluteURL
            {
                hops += 1
                guard let scheme = next.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
                    throw HTTPHostService.failure(502, "http redirect from \(url.absoluteString) to unsupported URL \(location)")
                }
                if status == 303 || ((status == 301 || status == 302) && method != .GET && method != .HEAD) {
                    method = method == .HEAD ? .HEAD : .GET
                    body = nil
                    headers.remove(name: "Content-Type")
                }
                if next.host?.lowercased() != url.host?.lowercased() {
                    for name in HTTPHostService.credentialHeaders { headers.remove(name: name) }
                }
                url = next
                continue
            }
            return HTTPHostService.encode(
                status: status, headers: response.headers.map { ($0.name, $0.value) }, body: response.body)
        }
    }
}
#else
import FoundationEssentials
import NIOCore

/// Stand-in while the package does not link AsyncHTTPClient: every request gets 501.
final class HTTPTransport: Sendable {
    init(settings: HostServicesConfiguration.HTTPSettings) {}

    static let isAvailable = false

    static func isTimeout(_ error: any Error) -> Bool { false }

    func fetch(
        method name: String, url: URL, headers fields: [(String, String)], body: [UInt8]?, deadline: NIODeadline,
        check: @Sendable (URL) async throws(HostServiceFailure) -> [String: String]
    ) async throws -> [UInt8] {
        throw HTTPHostService.failure(501, "the http host service is not built into this node (AsyncHTTPClient is not linked)")
    }
}
#endif
