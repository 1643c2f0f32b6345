// jetstream-bench MODE [N] [SIZE] — the NATSWire side of Benchmarks/jetstream-bench.sh.
//
//   objput  store a SIZE-byte object (default 64 MiB) from a file, as a new object (an earlier
//           one of that name is deleted before the clock starts); mbps = SIZE / elapsed (N is ignored)
//   objget  read it back into a file (stored first when missing); mbps = SIZE / elapsed
//   kvput   N puts (default 20000) of SIZE-byte values (default 16), one after the other; rate = ops/s
//   kvget   N gets of those keys (stored first when missing); rate = ops/s
//
// The server is NATS_URL (default nats://127.0.0.1:4222), with JetStream. Prints one line like
// the other benches, with the peak RSS of this process (VmHWM): the object modes stream, so it
// stays far below the object size.
import Foundation
import NATSWire
import NIOCore

@main
struct JetStreamBench {
    static let bucket = "natswire_bench"

    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2, arguments.count <= 4 else { usage() }
        let mode = arguments[1]
        let numbers = arguments.dropFirst(2).map { Int($0) }
        guard numbers.allSatisfy({ $0 != nil }) else { usage() }
        let values = numbers.compactMap { $0 }
        let url = ProcessInfo.processInfo.environment["NATS_URL"] ?? "nats://127.0.0.1:4222"
        var options = NATSClientOptions(servers: [url])
        options.name = "jetstream-bench-\(mode)"
        let client = try NATSClient(options: options)
        try await client.connect()
        let js = try client.jetStream(timeout: .seconds(30))
        switch mode {
        case "objput", "objget":
            // `objput [SIZE]`, or `objput N SIZE` (N ignored) like the other modes.
            let bytes = values.last ?? 64 * 1024 * 1024
            guard bytes > 0 else { usage() }
            try await objects(js, put: mode == "objput", size: bytes)
        case "kvput", "kvget":
            let count = values.first ?? 20_000
            let valueSize = values.count > 1 ? values[1] : 16
            guard count > 0, valueSize >= 0 else { usage() }
            // Sequential request/reply: run on the connection's event loop, as the C bench uses send-ASAP.
            try await Task(executorPreference: client.taskExecutor) {
                try await keyValue(js, put: mode == "kvput", n: count, size: valueSize)
            }.value
        default:
            usage()
        }
        await client.close()
    }

    static func usage() -> Never {
        FileHandle.standardError.write(Data("usage: jetstream-bench objput|objget [[N] SIZE] | kvput|kvget [N [SIZE]]\n".utf8))
        exit(2)
    }

    static func objects(_ js: JetStreamContext, put: Bool, size: Int) async throws {
        let store = try await js.createObjectStore(ObjectStoreConfig(bucket: bucket))
        let name = "object-\(size)"
        let directory = NSTemporaryDirectory() + "jetstream-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let needsPut = put ? true : (try? await store.info(name))?.size != UInt64(size)
        if needsPut {
            let source = directory + "/source.bin"
            try writeSource(source, size: size)
            // Time the storing of a new object, not the purge of the one it would replace.
            if (try? await store.info(name)) != nil { try await store.delete(name) }
            let start = ContinuousClock.now
            let info = try await store.put(name, contentsOfFile: source)
            let elapsed = ContinuousClock.now - start
            try? FileManager.default.removeItem(atPath: source)
            if put {
                precondition(info.size == UInt64(size))
                print("natswire objput size=\(size) mbps=\(mbps(size, elapsed)) peak_rss_mb=\(peakRSS())")
                return
            }
        }
        let target = directory + "/target.bin"
        let start = ContinuousClock.now
        let info = try await store.get(name, toFile: target)
        let elapsed = ContinuousClock.now - start
        let written = (try FileManager.default.attributesOfItem(atPath: target)[.size] as? Int) ?? -1
        precondition(info.size == UInt64(size) && written == size, "object read back with \(written) bytes")
        print("natswire objget size=\(size) mbps=\(mbps(size, elapsed)) peak_rss_mb=\(peakRSS())")
    }

    /// Writes `size` pseudo-random bytes in 1 MiB pieces (never the whole content in memory).
    static func writeSource(_ path: String, size: Int) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var state = UInt64.random(in: 1...UInt64.max)
        var piece = [UInt8](repeating: 0, count: 1024 * 1024)
        var left = size
        while left > 0 {
            let count = min(left, piece.count)
            piece.withUnsafeMutableBytes { bytes in
                for index in stride(from: 0, to: count, by: 8) {
                    // xorshift64: incompressible enough, and cheap.
                    state ^= state << 13
                    state ^= state >> 7
                    state ^= state << 17
                    var word = state
                    for offset in index..<min(index + 8, count) {
                        bytes[offset] = UInt8(truncatingIfNeeded: word)
                        word >>= 8
                    }
                }
            }
            try handle.write(contentsOf: piece[0..<count])
            left -= count
        }
    }

    static func keyValue(_ js: JetStreamContext, put: Bool, n: Int, size: Int) async throws {
        let kv = try await js.createKeyValue(KeyValueConfig(bucket: bucket))
        let value = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0) })
        let keys = 1000
        if put {
            let start = ContinuousClock.now
            for index in 0..<n {
                try await kv.put("key\(index % keys)", value)
            }
            let elapsed = ContinuousClock.now - start
            print("natswire kvput ops=\(n) size=\(size) rate=\(rate(n, elapsed)) peak_rss_mb=\(peakRSS())")
            return
        }
        for index in 0..<keys where (try? await kv.get("key\(index)")) == nil {
            try await kv.put("key\(index)", value)
        }
        let start = ContinuousClock.now
        for index in 0..<n {
            let entry = try await kv.get("key\(index % keys)")
            precondition(entry.value.readableBytes == size, "value of \(entry.key) has \(entry.value.readableBytes) bytes")
        }
        let elapsed = ContinuousClock.now - start
        print("natswire kvget ops=\(n) size=\(size) rate=\(rate(n, elapsed)) peak_rss_mb=\(peakRSS())")
    }

    static func seconds(_ duration: Duration) -> Double {
        let (whole, fraction) = duration.components
        return Double(whole) + Double(fraction) / 1e18
    }

    static func mbps(_ bytes: Int, _ elapsed: Duration) -> String {
        String(format: "%.1f", Double(bytes) / 1_000_000 / max(seconds(elapsed), 1e-9))
    }

    static func rate(_ count: Int, _ elapsed: Duration) -> Int {
        Int(Double(count) / max(seconds(elapsed), 1e-9))
    }

    /// Peak resident set size in MB, from `VmHWM` in /proc/self/status.
    static func peakRSS() -> String {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return "0" }
        return String(format: "%.1f", kilobytes / 1024)
    }
}
