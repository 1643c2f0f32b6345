import Foundation
@testable import NATSWire

/// Known-answer vectors written by `Fixtures/make_key_vectors.py`.
enum KeyFixtures {
    struct NKeyFile: Decodable, Sendable {
        struct Key: Decodable, Sendable, CustomStringConvertible {
            let type: String
            let prefix_char: String
            let raw_seed_hex: String
            let seed: String
            let public_key: String
            let public_key_raw_hex: String
            let signature_hex: String
            let nonce_signature_b64url: String
            var description: String { type }
        }
        struct Invalid: Decodable, Sendable {
            let seed_with_private_role: String
            let seed_truncated_payload: String
            let public_key_not_seed: String
            let public_key_with_seed_prefix: String
            let curve_seed: String
        }
        struct CRC: Decodable, Sendable {
            let input_hex: String
            let crc: UInt16
        }
        struct Base32Vector: Decodable, Sendable {
            let hex: String
            let text: String
        }
        let message_hex: String
        let nonce: String
        let keys: [Key]
        let invalid: Invalid
        let crc16: [CRC]
        let base32: [Base32Vector]
    }

    struct XKeyFile: Decodable, Sendable {
        struct Key: Decodable, Sendable {
            let raw_seed_hex: String
            let seed: String
            let public_key: String
            let public_key_raw_hex: String
        }
        struct Sealed: Decodable, Sendable, CustomStringConvertible {
            let plaintext_hex: String
            let nonce_hex: String
            let sealed_b64: String
            var description: String { "\(plaintext_hex.count / 2)-byte plaintext" }
        }
        let alice: Key
        let bob: Key
        let sealed_alice_to_bob: [Sealed]
    }

    struct JWTFile: Decodable, Sendable {
        struct Token: Decodable, Sendable {
            let token: String
            let jti_hash_input: String
            let payload_json: String
            let claims: [String: JSONValue]
        }
        struct Digest: Decodable, Sendable {
            let input: String
            let digest_hex: String
        }
        struct Creds: Decodable, Sendable {
            let jwt: String
            let seed_public_key: String
            let file: String
        }
        let signer_seed: String
        let signer_public_key: String
        let subject: String
        let valid_at_unix: Int64
        let workload: Token
        let minimal: Token
        let expired: Token
        let not_yet_valid: Token
        let sha512_256: [Digest]
        let creds: Creds
    }

    static let nkeys: NKeyFile = load("nkey_vectors")
    static let xkeys: XKeyFile = load("xkey_vectors")
    static let jwt: JWTFile = load("jwt_vectors")

    static func url(_ name: String, _ ext: String) -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures") else {
            fatalError("missing fixture Fixtures/\(name).\(ext); run make_key_vectors.py")
        }
        return url
    }

    private static func load<T: Decodable>(_ name: String) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(contentsOf: url(name, "json")))
        } catch {
            fatalError("cannot decode fixture \(name).json: \(error)")
        }
    }
}

extension Array where Element == UInt8 {
    init(hex: String) {
        precondition(hex.count % 2 == 0, "odd-length hex")
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        self = bytes
    }

    var hex: String {
        map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}

/// Runs `python3` with pynacl for cross-checks; `nil` when it is unavailable.
enum PythonNaCl {
    static let isAvailable: Bool = (try? run(["-c", "import nacl"])) != nil

    /// Runs `python3 args…`, returning stdout, or throws on a non-zero exit.
    @discardableResult
    static func run(_ args: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + args
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PythonError(status: process.terminationStatus, stderr: String(decoding: errors, as: UTF8.self))
        }
        return String(decoding: output, as: UTF8.self)
    }

    struct PythonError: Error, CustomStringConvertible {
        let status: Int32
        let stderr: String
        var description: String { "python3 exited \(status): \(stderr)" }
    }
}
