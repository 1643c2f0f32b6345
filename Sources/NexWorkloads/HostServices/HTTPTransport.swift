#if canImport(AsyncHTTPClient)
import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import Synchronization

/// The `http` host service's wire: an AsyncHTTPClient made on first use (and again after
/// ``shutdown()``), with redirects followed here (so each hop meets the allow-list) and
/// automatic decompression off.
final class HTTPTransport: Sendable {
    let settings: HostServicesConfiguration.HTTPSettings
    private let client = Mutex<HTTPClient?>(nil)

    init(settings: HostServicesConfiguration.HTTPSettings) {
        self.settings = settings
    }

    /// Whether this node can make HTTP requests at all.
    static let isAvailable = true

    static func isTimeout(_ error: any Error) -> Bool {
        guard let error = error as? HTTPClientError else { return false }
        return error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout
    }

    private func httpClient() -> HTTPClient {
        client.withLock { client in
            if let client { return client }
            var configuration = HTTPClient.Configuration(
                redirectConfiguration: .disallow,  // followed here, so each hop meets the allow-list
                // Connection attempts are retried until the connect timeout: stop them before the
                // whole deadline so a refused connection is reported as such, not as a timeout.
                timeout: .init(connect: .nanoseconds(settings.timeout.nanoseconds * 4 / 5)),
                decompression: .disabled)
            configuration.httpVersion = .automatic
            let made = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
            client = made
            return made
        }
    }

    func shutdown() async {
        let client = client.withLock { client in
            defer { client = nil }
            return client
        }
        try? await client?.shutdown()
    }

    /// Follows redirects (up to `max_redirects`, each hop checked), then reads the body.
    func fetch(
        method name: String, url: URL, headers fields: [(String, String)], body: [UInt8]?, deadline: NIODeadline,
        check: @Sendable (URL) throws(HostServiceFailure) -> Void
    ) async throws -> [UInt8] {
        let client = httpClient()
        var url = url
        var method = HTTPMethod(rawValue: name.uppercased())
        var headers = HTTPHeaders(fields)
        var body = body
        var hops = 0
        while true {
            try check(url)
            var request = HTTPClientRequest(url: url.absoluteString)
            request.method = method
            request.headers = headers
            if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
            let response = try await client.execute(request, deadline: deadline)
            let status = Int(response.status.code)
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
            let collected = try await response.body.collect(upTo: settings.maxResponseBytes)
            return HTTPHostService.encode(
                status: status, headers: response.headers.map { ($0.name, $0.value) }, body: Array(collected.readableBytesView))
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

    func shutdown() async {}

    func fetch(
        method name: String, url: URL, headers fields: [(String, String)], body: [UInt8]?, deadline: NIODeadline,
        check: @Sendable (URL) throws(HostServiceFailure) -> Void
    ) async throws -> [UInt8] {
        throw HTTPHostService.failure(501, "the http host service is not built into this node (AsyncHTTPClient is not linked)")
    }
}
#endif
