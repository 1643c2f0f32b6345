import FoundationEssentials

/// The contents of a decorated NATS `.creds` file: a user JWT and the NKey
/// seed that proves ownership of its subject.
///
/// ```text
/// -----BEGIN NATS USER JWT-----
/// eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ…
/// ------END NATS USER JWT------
///
/// ************************* IMPORTANT *************************
/// …
/// -----BEGIN USER NKEY SEED-----
/// SUAJ…
/// ------END USER NKEY SEED------
/// ```
///
/// Parsing follows nats.go / nats-io/jwt: a block is a line made of at least
/// three dashes, something, and at least three dashes; then a single token
/// line; then another such dash line. The first block is the JWT, the second
/// the seed. Dash counts and marker texts are not checked, CRLF line endings
/// are accepted, and a bare `SU…`/`SA…`/`SO…` line is accepted as the seed
/// when there is no second block.
public struct NATSCredentials: Sendable {
    /// The user JWT, as found (not verified).
    public let jwt: String
    /// The key pair built from the seed, used to sign the server nonce.
    public let seed: NKeyPair

    /// Wraps an already-parsed JWT and key pair.
    public init(jwt: String, seed: NKeyPair) {
        self.jwt = jwt
        self.seed = seed
    }

    /// Reads and parses the `.creds` file at `path`.
    ///
    /// - Throws: ``NATSCredentialsError`` naming `path`.
    public init(contentsOf path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw NATSCredentialsError.unreadable(source: path, reason: "\(String(describing: error))")
        }
        try self.init(parsing: String(decoding: data, as: UTF8.self), source: path)
    }

    /// Parses the text of a `.creds` file.
    ///
    /// - Throws: ``NATSCredentialsError`` with source `"<text>"`.
    public init(parsing text: String) throws {
        try self.init(parsing: text, source: "<text>")
    }

    private init(parsing text: String, source: String) throws {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        var blocks: [String] = []
        var index = 0
        while index + 2 < lines.count {
            if Self.isDashLine(lines[index]), Self.isToken(lines[index + 1]), Self.isDashLine(lines[index + 2]) {
                blocks.append(String(Self.trimmed(lines[index + 1])))
                index += 3
            } else {
                index += 1
            }
        }
        guard let jwt = blocks.first else {
            throw NATSCredentialsError.missingJWT(source: source)
        }
        var seedText = blocks.count > 1 ? blocks[1] : nil
        if seedText == nil {
            seedText = lines.lazy.map { String(Self.trimmed($0)) }.first { line in
                line.hasPrefix("SU") || line.hasPrefix("SA") || line.hasPrefix("SO")
            }
        }
        guard let seedText else {
            throw NATSCredentialsError.missingSeed(source: source)
        }
        do {
            self.seed = try NKeyPair(seed: seedText)
        } catch let error as NKeyError {
            throw NATSCredentialsError.invalidSeed(source: source, reason: error.description)
        }
        self.jwt = jwt
    }

    /// Decodes the JWT and verifies its signature against its issuer.
    public func decodedJWT() throws -> NATSJWT {
        try NATSJWT(token: jwt)
    }

    private static func trimmed(_ line: Substring) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = line.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = line.lastIndex(where: { !isSpace($0) })!
        return line[first...last]
    }

    /// At least three dashes, anything, at least three dashes.
    private static func isDashLine(_ line: Substring) -> Bool {
        let text = trimmed(line)
        let leading = text.prefix(while: { $0 == "-" }).count
        let trailing = text.reversed().prefix(while: { $0 == "-" }).count
        guard leading >= 3, trailing >= 3 else { return false }
        // An all-dash line needs enough dashes for both runs.
        return leading == text.count ? text.count >= 6 : true
    }

    /// One or more of `[A-Za-z0-9_\-.=]`.
    private static func isToken(_ line: Substring) -> Bool {
        let text = trimmed(line)
        return !text.isEmpty && text.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "A"..."Z", "a"..."z", "0"..."9", "_", "-", ".", "=": true
            default: false
            }
        }
    }
}
