import Foundation
import NATSTestSupport
import NATSWire
import Testing
@testable import NexNodeKit
import NexWorkloads

/// A real HTTP server on 127.0.0.1 (Python's http.server, threaded), optionally over TLS with a
/// self-signed certificate.
final class LocalHTTPServer {
    let port: Int
    let process: Process
    let directory: TemporaryDirectory

    static let script = #"""
    import json, os, signal, ssl, sys, threading, time, urllib.parse
    from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

    # The test process blocks signals, and children inherit that: undo it. Never outlive the
    # test process, nor two minutes.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    parent = os.getppid()

    def watchdog():
        started = time.monotonic()
        while os.getppid() == parent and time.monotonic() - started < 120:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send(self, status, body, content_type="text/plain; charset=utf-8", extra=()):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def serve(self):
            with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "requests.log"), "a") as log:
                log.write(self.command + " " + self.path + "\n")
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            if path == "/text":
                self.send(200, "h\u00e9llo".encode(), extra=[("X-Multi", "a"), ("X-Multi", "b"), ("x-lower", "c")])
            elif path == "/echo":
                body = {"method": self.command, "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": data.decode("utf-8", "replace")}
                self.send(200, json.dumps(body).encode(), "application/json")
            elif path == "/binary":
                self.send(200, bytes([0xFF, 0xFE, 0x00, 0x80]), "application/octet-stream")
            elif path == "/big":
                self.send(200, b"x" * (2 * 1024 * 1024))
            elif path == "/chunked-big":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for _ in range(40):
                        chunk = b"y" * 65536
                        self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
            elif path == "/slow":
                time.sleep(8)
                self.send(200, b"late")
            elif path == "/redirect":
                target = urllib.parse.parse_qs(query)["to"][0]
                status = int(urllib.parse.parse_qs(query).get("status", ["302"])[0])
                self.send(status, b"", extra=[("Location", target)])
            else:
                self.send(404, b"not found")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = serve

    # Port 0: the kernel picks the port; report it (atomically) in the file named by argv[1].
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if len(sys.argv) > 3:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(sys.argv[1] + ".tmp", "w") as port_file:
        port_file.write(str(server.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()
    """#

    private init(port: Int, process: Process, directory: TemporaryDirectory) {
        self.port = port
        self.process = process
        self.directory = directory
    }

    static func start(tls: Bool = false) async throws -> LocalHTTPServer {
        let directory = try TemporaryDirectory(prefix: "hs-http-")
        let scriptPath = try directory.write(script, to: "server.py")
        // The server binds a port of its own choosing and writes it to `portPath`.
        let portPath = directory.appending("port")
        var arguments = ["python3", scriptPath, portPath]
        if tls {
            let key = directory.appending("key.pem")
            let certificate = directory.appending("cert.pem")
            try run("/usr/bin/env", [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate,
                "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            ])
            arguments += [certificate, key]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        do {
            let port = try await waitForValue(timeout: .seconds(10), "python3 http server reports its port") {
                (try? String(contentsOfFile: portPath, encoding: .utf8)).flatMap { Int($0) }
            }
            return LocalHTTPServer(port: port, process: process, directory: directory)
        } catch {
            process.terminate()
            process.waitUntilExit()
            throw error
        }
    }

    private static func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw HostServicesTestError("\(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
    }

    /// The requests the server received so far, `METHOD /path?query` each.
    var requests: [String] {
        let text = (try? String(contentsOfFile: directory.appending("requests.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    func url(_ path: String, host: String = "127.0.0.1", scheme: String = "http") -> String {
        "\(scheme)://\(host):\(port)\(path)"
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

@Suite("Host services: http")
struct HostServicesHTTPTests {
    /// Runs `body` with a local HTTP server and the host services; stops both.
    /// The test server is on loopback: these tests name it in `allowed_hosts`.
    static var loopbackAllowed: HostServicesConfiguration {
        var configuration = HostServicesConfiguration()
        configuration.http.allowedHosts = ["127.0.0.1", "localhost"]
        return configuration
    }

    func withHTTP(
        _ configuration: HostServicesConfiguration = loopbackAllowed, tls: Bool = false,
        _ body: (HostServicesHarness, LocalHTTPServer) async throws -> Void
    ) async throws {
        let http = try await LocalHTTPServer.start(tls: tls)
        defer { http.stop() }
        try await withHostServices(configuration) { hs in try await body(hs, http) }
    }

    @Test func getReturnsStatusHeadersAndBody() async throws {
        try await withHTTP { hs, http in
            let reply = try await hs.call("http", "get", headers: ["x-http-url": http.url("/text")])
            #expect(reply.code == 200 && reply.message == "OK", "\(reply)")
            let result = try reply.json()
            #expect(result["status"]?.intValue == 200)
            #expect(result["body"] == "h\u{e9}llo")
            #expect(result["body_encoding"] == nil)
            #expect(result["error"] == nil)
            #expect(result["headers"]?["Content-Type"] == ["text/plain; charset=utf-8"])
            #expect(result["headers"]?["X-Multi"] == ["a", "b"])
            #expect(result["headers"]?["X-Lower"] == ["c"])  // Go's canonical names, as Nex 0.2

            let missing = try await hs.call("http", "get", headers: ["x-http-url": http.url("/nothing")])
            let missingResult = try missing.json()
            #expect(missing.code == 200 && missingResult["status"]?.intValue == 404, "\(missing)")
        }
    }

    @Test func postSendsBodyAndCustomHeaders() async throws {
        try await withHTTP { hs, http in
            for method in ["post", "put", "patch"] {
                let reply = try await hs.call(
                    "http", method,
                    headers: ["x-http-url": http.url("/echo"), "x-http-header-X-Token": "abc", "x-http-header-Content-Type": "text/plain"],
                    body: Array("payload".utf8))
                #expect(reply.code == 200, "\(reply)")
                let echoed = try JSONDecoder().decode(JSONValue.self, from: Data((try reply.json())["body"]?.stringValue?.utf8 ?? "".utf8))
                #expect(echoed["method"]?.stringValue == method.uppercased())
                #expect(echoed["body"] == "payload")
                #expect(echoed["headers"]?["x-token"] == "abc")
                #expect(echoed["headers"]?["content-type"] == "text/plain")
            }
            // get, delete and head send no body.
            let delete = try await hs.call("http", "delete", headers: ["x-http-url": http.url("/echo")], body: Array("ignored".utf8))
            let echoed = try JSONDecoder().decode(JSONValue.self, from: Data((try delete.json())["body"]?.stringValue?.utf8 ?? "".utf8))
            #expect(echoed["method"] == "DELETE" && echoed["body"] == "")

            let head = try await hs.call("http", "head", headers: ["x-http-url": http.url("/text")])
            let headResult = try head.json()
            #expect(head.code == 200 && headResult["status"]?.intValue == 200 && headResult["body"] == "")

            let reserved = try await hs.call("http", "get", headers: ["x-http-url": http.url("/echo"), "x-http-header-Host": "evil"])
            #expect(reserved.code == 400 && reserved.message == "http: request header Host may not be set", "\(reserved)")
        }
    }

    @Test func binaryBodiesComeBase64Encoded() async throws {
        try await withHTTP { hs, http in
            let reply = try await hs.call("http", "get", headers: ["x-http-url": http.url("/binary")])
            let result = try reply.json()
            #expect(result["body_encoding"] == "base64")
            #expect(result["body"]?.stringValue.flatMap { Data(base64Encoded: $0) } == Data([0xFF, 0xFE, 0x00, 0x80]))
        }
    }

    @Test func redirectsAreFollowedAndEachHopIsChecked() async throws {
        var configuration = HostServicesConfiguration()
        configuration.http.allowedHosts = ["127.0.0.1"]
        try await withHTTP(configuration) { hs, http in
            let followed = try await hs.call("http", "post", headers: [
                "x-http-url": http.url("/redirect?to=/echo&status=303"),
            ], body: Array("data".utf8))
            #expect(followed.code == 200, "\(followed)")
            let echoed = try JSONDecoder().decode(JSONValue.self, from: Data((try followed.json())["body"]?.stringValue?.utf8 ?? "".utf8))
            #expect(echoed["method"] == "GET" && echoed["body"] == "")  // 303: GET without the body

            let target = http.url("/echo", host: "localhost").addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let escaped = try await hs.call("http", "get", headers: ["x-http-url": http.url("/redirect?to=\(target)")])
            #expect(escaped.code == 403 && escaped.message == "http host localhost is not allowed", "\(escaped)")
            let escapedResult = try escaped.json()
            #expect(escapedResult["error"] == "http host localhost is not allowed")

            let refused = try await hs.call("http", "get", headers: ["x-http-url": http.url("/text", host: "localhost")])
            #expect(refused.code == 403 && refused.message == "http host localhost is not allowed", "\(refused)")
        }
    }

    @Test func timeoutsAndSizeLimits() async throws {
        var configuration = Self.loopbackAllowed
        // Long enough for the size-limit calls on a loaded 2-core machine, well short of the
        // 8 s the slow endpoint takes.
        configuration.http.timeout = .milliseconds(1500)
        configuration.http.maxResponseBytes = 1024 * 1024
        try await withHTTP(configuration) { hs, http in
            let start = ContinuousClock.now
            let slow = try await hs.call("http", "get", headers: ["x-http-url": http.url("/slow")])
            #expect(slow.code == 504 && slow.message.contains("timed out after 1500 ms"), "\(slow)")
            #expect(ContinuousClock.now - start < .seconds(6))  // answered by the timeout, not the server (8 s)

            let big = try await hs.call("http", "get", headers: ["x-http-url": http.url("/big")])
            #expect(big.code == 413 && big.message.contains("max_response_bytes"), "\(big)")
            let chunked = try await hs.call("http", "get", headers: ["x-http-url": http.url("/chunked-big")])
            #expect(chunked.code == 413 && chunked.message.contains("max_response_bytes"), "\(chunked)")

            let reserved = try ReservedPort()  // bound, never listening: the connection is refused
            let closedPort = reserved.port
            let refused = try await hs.call("http", "get", headers: ["x-http-url": "http://127.0.0.1:\(closedPort)/"])
            #expect(refused.code == 502 && refused.message.hasPrefix("http get http://127.0.0.1:\(closedPort)/ failed"), "\(refused)")
        }
    }

    @Test func badRequestsAreRefused() async throws {
        try await withHTTP { hs, http in
            let missing = try await hs.call("http", "get")
            #expect(missing.code == 400 && missing.message == "missing header x-http-url", "\(missing)")
            let scheme = try await hs.call("http", "get", headers: ["x-http-url": "file:///etc/passwd"])
            #expect(scheme.code == 400 && scheme.message.contains("scheme file"), "\(scheme)")
            let notURL = try await hs.call("http", "get", headers: ["x-http-url": "not a url"])
            #expect(notURL.code == 400, "\(notURL)")
            let method = try await hs.call("http", "options", headers: ["x-http-url": http.url("/text")])
            #expect(method.code == 404 && method.message == "unknown method options for http", "\(method)")
        }
    }

    @Test func httpsVerifiesTheServerCertificate() async throws {
        try await withHTTP(tls: true) { hs, http in
            // A self-signed certificate is not trusted: TLS is real and verified.
            let reply = try await hs.call("http", "get", headers: ["x-http-url": http.url("/text", host: "localhost", scheme: "https")])
            #expect(reply.code == 502 && reply.message.lowercased().contains("certificate"), "\(reply)")
        }
    }

    @Test func httpsWorksWithATrustedCertificateAndChecksTheName() async throws {
        let http = try await LocalHTTPServer.start(tls: true)
        defer { http.stop() }
        var configuration = Self.loopbackAllowed
        configuration.http.caFile = http.directory.appending("cert.pem")
        try await withHostServices(configuration) { hs in
            let reply = try await hs.call("http", "get", headers: ["x-http-url": http.url("/text", host: "localhost", scheme: "https")])
            #expect(reply.code == 200, "\(reply)")
            #expect(try reply.json()["body"] == "h\u{e9}llo")
            // The same server by its address: the certificate names only localhost.
            let byAddress = try await hs.call("http", "get", headers: ["x-http-url": http.url("/text", scheme: "https")])
            #expect(byAddress.code == 502 && byAddress.message.lowercased().contains("certificate"), "\(byAddress)")
        }
    }
}
