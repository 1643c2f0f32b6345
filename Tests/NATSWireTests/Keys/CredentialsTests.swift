import Foundation
import Testing
@testable import NATSWire

@Suite("NATS .creds")
struct CredentialsTests {
    static let vectors = KeyFixtures.jwt.creds
    static var fileURL: URL { KeyFixtures.url("user", "creds") }
    static var text: String { get throws { try String(contentsOf: fileURL, encoding: .utf8) } }
    static let seedLine = "SUAJ63TS2PMNR5M2AIEIZTRJLIQYGDKHQFCRMOQNTAAQP7O7WYK4WFIHLI"

    @Test func parsesFixtureFile() throws {
        let creds = try NATSCredentials(contentsOf: Self.fileURL.path)
        #expect(creds.jwt == Self.vectors.jwt)
        #expect(creds.seed.publicKey == Self.vectors.seed_public_key)
        #expect(creds.seed.type == .user)
        let jwt = try creds.decodedJWT()
        #expect(jwt.claims.subject == creds.seed.publicKey)
        #expect(jwt.claims.nats["type"]?.stringValue == "user")
    }

    @Test func toleratesCRLFAndDashCounts() throws {
        let text = try Self.text
        let crlf = text.replacingOccurrences(of: "\n", with: "\r\n")
        #expect(try NATSCredentials(parsing: crlf).jwt == Self.vectors.jwt)

        let dashes = text
            .replacingOccurrences(of: "-----BEGIN", with: "---BEGIN")
            .replacingOccurrences(of: "------END", with: "----------END")
            .replacingOccurrences(of: "JWT------", with: "JWT---")
        let parsed = try NATSCredentials(parsing: dashes)
        #expect(parsed.jwt == Self.vectors.jwt)
        #expect(parsed.seed.publicKey == Self.vectors.seed_public_key)

        let indented = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { "  " + $0 + " \t" }.joined(separator: "\n")
        #expect(try NATSCredentials(parsing: indented).seed.publicKey == Self.vectors.seed_public_key)
    }

    @Test func acceptsBareSeedLine() throws {
        let text = """
        -----BEGIN NATS USER JWT-----
        \(Self.vectors.jwt)
        ------END NATS USER JWT------

        \(Self.seedLine)
        """
        let creds = try NATSCredentials(parsing: text)
        #expect(creds.seed.publicKey == Self.vectors.seed_public_key)
    }

    @Test func missingSeedBlock() throws {
        let text = """
        -----BEGIN NATS USER JWT-----
        \(Self.vectors.jwt)
        ------END NATS USER JWT------

        ************************* IMPORTANT *************************
        """
        #expect(throws: NATSCredentialsError.missingSeed(source: "<text>")) {
            try NATSCredentials(parsing: text)
        }
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("natswire-\(UUID().uuidString).creds")
        try Data(text.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect {
            try NATSCredentials(contentsOf: url.path)
        } throws: { error in
            guard let error = error as? NATSCredentialsError, error == .missingSeed(source: url.path) else {
                return false
            }
            return error.description.contains(url.path) && error.description.contains("SEED")
        }
    }

    @Test func missingJWTAndUnreadableFile() throws {
        #expect(throws: NATSCredentialsError.missingJWT(source: "<text>")) {
            try NATSCredentials(parsing: "just some text\n\(Self.seedLine)\n")
        }
        #expect(throws: NATSCredentialsError.missingJWT(source: "<text>")) {
            try NATSCredentials(parsing: "")
        }
        let path = "/nonexistent/natswire/user.creds"
        #expect {
            try NATSCredentials(contentsOf: path)
        } throws: { error in
            guard case let .unreadable(source, _)? = error as? NATSCredentialsError else { return false }
            return source == path && "\(error)".contains(path)
        }
    }

    @Test func invalidSeedInBlock() throws {
        let text = try Self.text.replacingOccurrences(of: Self.seedLine, with: "SUAAAAAAAAAA")
        #expect {
            try NATSCredentials(parsing: text)
        } throws: { error in
            guard case let .invalidSeed(source, reason)? = error as? NATSCredentialsError else { return false }
            return source == "<text>" && !reason.contains("SUAAAAAAAAAA")
        }
    }
}
