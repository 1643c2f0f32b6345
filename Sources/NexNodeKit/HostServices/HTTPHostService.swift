import NexAgentBus
import NexWorkloads
import FoundationEssentials
import NATSWire
import NIOCore

/// The `http` host service: checks a request (method, URL, headers, allow-list), runs it on its
/// ``HTTPTransport`` under one whole-request deadline, and encodes the response as JSON.
///
/// The transport is HTTP/1.1 on SwiftNIO with the node's own TLS (``HTTPTransport``). Each
/// hop's destination is checked by ``destination(of:)`` before it connects.
final class HTTPHostService: Sendable {
    let settings: HostServicesConfiguration.HTTPSettings
    let transport: HTTPTransport

    static let methods: Set<String> = ["get", "post", "put", "patch", "delete", "head"]
    /// Request headers a function may not set: they belong to the transport.
    static let reservedHeaders: Set<String> = ["host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "keep-alive"]
    /// Headers dropped when a redirect leaves the original host (as Go's client does).
    static let credentialHeaders: Set<String> = ["authorization", "cookie", "proxy-authorization", "www-authenticate"]
    static let headerPrefix = "x-http-header-"

    init(settings: HostServicesConfiguration.HTTPSettings) {
        self.settings = settings
        self.transport = HTTPTransport(settings: settings)
    }

    /// The reply body: `{"status","headers","body","body_encoding"?,"error"?}`.
    struct Result: Encodable {
        var status: Int
        var headers: [String: [String]]
        var body: String
        var bodyEncoding: String?
        var error: String?

        enum CodingKeys: String, CodingKey {
            case status, headers, body, bodyEncoding = "body_encoding", error
        }
    }

    /// Runs one request: `method` (get, post, put, patch, delete, head) of `urlText`, with the
    /// `x-http-header-<Name>` headers of `headers` and, for post/put/patch, `body`.
    func perform(method name: String, url urlText: String, headers: NATSHeaders, body: [UInt8]) async throws(HostServiceFailure)
        -> [UInt8]
    {
        guard Self.methods.contains(name) else { throw HostServicesServer.unknownMethod(name, of: "http") }
        let url = try Self.parse(urlText)
        var requestHeaders: [(String, String)] = []
        for field in headers where field.name.lowercased().hasPrefix(Self.headerPrefix) {
            let headerName = String(field.name.dropFirst(Self.headerPrefix.count))
            guard !headerName.isEmpty else { throw .badRequest("http: header \(field.name) names no request header") }
            guard !Self.reservedHeaders.contains(headerName.lowercased()) else {
                throw .badRequest("http: request header \(headerName) may not be set")
            }
            requestHeaders.append((headerName, field.value))
        }
        let sendsBody = name == "post" || name == "put" || name == "patch"
        let outgoing = requestHeaders
        let transport = self.transport
        let timeout = settings.timeout
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let milliseconds = timeout.milliseconds
        do {
            return try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                group.addTask {
                    try await transport.fetch(
                        method: name, url: url, headers: outgoing, body: sendsBody ? body : nil, deadline: deadline,
                        check: { url throws(HostServiceFailure) in try await self.destination(of: url) })
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                guard let first else {
                    throw Self.failure(504, "http \(name) \(urlText) timed out after \(milliseconds) ms")
                }
                return first
            }
        } catch let failure as HostServiceFailure {
            throw failure
        } catch is NIOTooManyBytesError {
            throw Self.failure(413, "http \(name) \(urlText): the response exceeds max_response_bytes (\(settings.maxResponseBytes))")
        } catch let error where HTTPTransport.isTimeout(error) {
            throw Self.failure(504, "http \(name) \(urlText) timed out after \(milliseconds) ms (\(error))")
        } catch {
            throw Self.failure(502, "http \(name) \(urlText) failed: \(error)")
        }
    }

    /// An absolute http or https URL with a host.
    static func parse(_ text: String) throws(HostServiceFailure) -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased() else {
            throw .badRequest("http: '\(text)' is not a URL")
        }
        guard scheme == "http" || scheme == "https" else {
            throw .badRequest("http: scheme \(scheme) of '\(text)' is not supported (http, https)")
        }
        guard let host = url.host, !host.isEmpty else { throw .badRequest("http: '\(text)' names no host") }
        return url
    }

    /// Checks where a request (or a redirect hop) to `url` would connect, and returns the DNS
    /// pin for the transport (`host → checked IP address`; empty when there is nothing to pin).
    ///
    /// - `allowed_hosts` set: only the hosts it names, connected as they resolve (the operator
    ///   named them, whatever their addresses).
    /// - Otherwise: an address literal, or every address the name resolves to, must be public
    ///   (``HTTPAddressPolicy``); the connection then goes to the first address checked, not to
    ///   whatever a second lookup would answer, so DNS rebinding cannot slip a private address in.
    func destination(of url: URL) async throws(HostServiceFailure) -> [String: String] {
        var host = (url.host ?? "")
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let name = host.lowercased()
        if !settings.allowedHosts.isEmpty {
            guard settings.allowedHosts.contains(name) else {
                throw Self.failure(403, "http host \(name) is not allowed")
            }
            return [:]
        }
        if let literal = HTTPHostResolver.literal(host) {
            if let reason = HTTPAddressPolicy.refusal(literal.bytes) {
                throw Self.failure(403, "http host \(name) is \(reason): not allowed unless allowed_hosts names it")
            }
            return [:]
        }
        let addresses = try await HTTPHostResolver.resolve(host)
        for address in addresses {
            if let reason = HTTPAddressPolicy.refusal(address.bytes) {
                throw Self.failure(
                    403, "http host \(name) resolves to \(address.text), \(reason): not allowed unless allowed_hosts names it")
            }
        }
        return [host: addresses[0].text]
    }

    /// A failure whose body is the JSON result with `error` set, so either way of reading it works.
    static func failure(_ code: Int, _ message: String) -> HostServiceFailure {
        HostServiceFailure(
            code, message, body: HostServicesServer.json(Result(status: 0, headers: [:], body: "", error: message)))
    }

    static func encode(status: Int, headers: [(String, String)], body: [UInt8]) -> [UInt8] {
        var grouped: [String: [String]] = [:]
        for (name, value) in headers { grouped[canonicalName(name), default: []].append(value) }
        var result = Result(status: status, headers: grouped, body: "")
        if let text = String(validating: body, as: UTF8.self) {
            result.body = text
        } else {
            result.body = Data(body).base64EncodedString()
            result.bodyEncoding = "base64"
        }
        return HostServicesServer.json(result)
    }

    /// Go's canonical header names (`content-type` → `Content-Type`), as Nex 0.2 returned them.
    static func canonicalName(_ name: String) -> String {
        var upper = true
        var bytes: [UInt8] = []
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z") where upper: bytes.append(byte - 32)
            case UInt8(ascii: "A")...UInt8(ascii: "Z") where !upper: bytes.append(byte + 32)
            default: bytes.append(byte)
            }
            upper = byte == UInt8(ascii: "-")
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension HostServicesServer {
    /// `http`: get, post, put, patch, delete, head of header `x-http-url`.
    func serveHTTP(_ method: String, headers: NATSHeaders, body: [UInt8]) async throws -> HostServiceReply {
        guard HTTPHostService.methods.contains(method) else { throw Self.unknownMethod(method, of: "http") }
        let url = try Self.header("x-http-url", in: headers)
        return Self.ok(try await http.perform(method: method, url: url, headers: headers, body: body))
    }
}
