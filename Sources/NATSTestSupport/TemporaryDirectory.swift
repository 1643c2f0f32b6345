import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A uniquely named directory under the system temporary directory.
///
/// The directory (and everything in it) is removed when the last reference
/// goes away, unless `keep` is set or the environment variable
/// `NATS_TEST_KEEP_TMP` is set to a non-empty value (handy when a test
/// fails and you want to look at the server log afterwards).
public final class TemporaryDirectory: Sendable {
    /// Absolute path of the directory, without a trailing slash.
    public let path: String
    /// When true the directory is left on disk at deinit.
    public let keep: Bool

    /// Creates a fresh directory named `<prefix>XXXXXX` in `parent`, by default the temp dir.
    public init(prefix: String = "nats-test-", in parent: String? = nil, keep: Bool = false) throws {
        var base = parent ?? NSTemporaryDirectory()
        while base.count > 1 && base.hasSuffix("/") {
            base.removeLast()
        }
        if base.isEmpty { base = "/tmp" }
        var template = Array("\(base)/\(prefix)XXXXXX".utf8CString)
        let created: String? = template.withUnsafeMutableBufferPointer { buffer in
            guard let result = mkdtemp(buffer.baseAddress!) else { return nil }
            return String(cString: result)
        }
        guard let created else {
            let code = errno
            throw TemporaryDirectoryError(
                message: "mkdtemp in \(base) failed: \(String(cString: strerror(code)))"
            )
        }
        self.path = created
        let envKeep = ProcessInfo.processInfo.environment["NATS_TEST_KEEP_TMP"].map { !$0.isEmpty } ?? false
        self.keep = keep || envKeep
    }

    /// File URL of the directory.
    public var url: URL { URL(fileURLWithPath: path, isDirectory: true) }

    /// Path of an entry named `name` inside the directory (not created).
    public func appending(_ name: String) -> String {
        "\(path)/\(name)"
    }

    /// Creates a sub-directory (and parents) and returns its path.
    @discardableResult
    public func makeSubdirectory(_ name: String) throws -> String {
        let sub = appending(name)
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        return sub
    }

    /// Writes `contents` (UTF-8) to a file in the directory and returns its path.
    @discardableResult
    public func write(_ contents: String, to name: String) throws -> String {
        let file = appending(name)
        try Data(contents.utf8).write(to: URL(fileURLWithPath: file), options: .atomic)
        return file
    }

    deinit {
        if !keep {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}

/// Raised when the temporary directory cannot be created.
public struct TemporaryDirectoryError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
