import Foundation

/// Certificates made at run time with the `openssl` command: a CA, a server certificate for
/// 127.0.0.1/localhost, an expired one, one for another host name, and a client certificate.
public final class TestCertificates: Sendable {
    public let directory: String

    public init() throws {
        directory = NSTemporaryDirectory() + "natswire-tls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
                    "-days", "30", "-subj", "/CN=NATSWire Test CA")
        try openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "other-ca-key.pem", "-out", "other-ca.pem",
                    "-days", "30", "-subj", "/CN=Some Other CA")
        try issue("server", commonName: "localhost", san: "IP:127.0.0.1,DNS:localhost", days: "30")
        try issue("expired", commonName: "localhost", san: "IP:127.0.0.1,DNS:localhost", days: "-1")
        try issue("wronghost", commonName: "elsewhere.example", san: "DNS:elsewhere.example", days: "30")
        try issue("client", commonName: "natswire-client", san: "DNS:natswire-client", days: "30")
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Lets another user (a node run as its own user) read the files: the directory is
    /// traversable and every file readable. For tests only: keys become world-readable.
    public func shareWithOtherUsers() {
        chmod(directory, 0o755)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            chmod(path(name), 0o644)
        }
    }

    public func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// nats-server `tls {}` block for one of the issued server certificates.
    public func serverConfig(cert: String = "server", verifyClients: Bool = false, handshakeFirst: Bool = false) -> String {
        """
        tls {
          cert_file: "\(path("\(cert).pem"))"
          key_file: "\(path("\(cert)-key.pem"))"
          ca_file: "\(path("ca.pem"))"
          verify: \(verifyClients)
          \(handshakeFirst ? "handshake_first: true" : "")
          timeout: 2
        }
        """
    }

    private func issue(_ name: String, commonName: String, san: String, days: String) throws {
        try openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "\(name)-key.pem", "-out", "\(name).csr",
                    "-subj", "/CN=\(commonName)")
        try "subjectAltName=\(san)\n".write(toFile: path("\(name).ext"), atomically: true, encoding: .utf8)
        try openssl("x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                    "-out", "\(name).pem", "-days", days, "-extfile", "\(name).ext")
    }

    private func openssl(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NATSServerError("openssl \(arguments.joined(separator: " ")) failed (exit \(process.terminationStatus))", logTail: "")
        }
    }
}
