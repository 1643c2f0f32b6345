import Foundation

/// The ports a nats-server reports in its ports file.
///
/// Started with `--ports_file_dir <dir>`, nats-server writes `<dir>/<executable>_<pid>.ports`
/// once its listeners are bound, as JSON such as
/// `{"nats":["nats://127.0.0.1:4222"],"monitoring":["http://127.0.0.1:8222"],"cluster":[...]}`
/// (the same in 2.9 and 2.10+). The file is removed when the server exits.
struct NATSServerPorts: Equatable, Sendable {
    /// Client port; zero while unknown.
    var client = 0
    var monitoring: Int?
    var cluster: Int?

    /// Reads the ports file of process `pid` in `directory`. Throws while it is missing or
    /// incomplete, so a caller polls until the server has written it.
    static func read(directory: String, pid: Int32) throws -> NATSServerPorts {
        let suffix = "_\(pid).ports"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        guard let name = names.first(where: { $0.hasSuffix(suffix) }) else {
            throw NATSServerError("nats-server (pid \(pid)) has not written its ports file in \(directory) yet")
        }
        let path = "\(directory)/\(name)"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try parse(data, path: path)
    }

    /// Parses the JSON of a ports file (`path` only names it in errors).
    static func parse(_ data: Data, path: String) throws -> NATSServerPorts {
        struct File: Decodable {
            var nats: [String]?
            var monitoring: [String]?
            var cluster: [String]?
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw NATSServerError("ports file \(path) is not complete JSON yet: \(String(decoding: data, as: UTF8.self))")
        }
        guard let client = file.nats?.lazy.compactMap(port(of:)).first else {
            throw NATSServerError("ports file \(path) names no client port: \(String(decoding: data, as: UTF8.self))")
        }
        return NATSServerPorts(
            client: client,
            monitoring: file.monitoring?.lazy.compactMap(port(of:)).first,
            cluster: file.cluster?.lazy.compactMap(port(of:)).first)
    }

    /// The port of a URL such as `nats://127.0.0.1:4222` or `http://[::1]:8222`.
    private static func port(of url: String) -> Int? {
        guard let colon = url.lastIndex(of: ":") else { return nil }
        return Int(url[url.index(after: colon)...]).flatMap { $0 > 0 ? $0 : nil }
    }
}
