// natswire-bench MODE N SIZE — the NATSWire side of `make bench` (see Benchmarks/run-bench.sh).
//
//   pub     publish N messages of SIZE bytes to bench.pub, then flush; rate = N / elapsed
//   pubsub  one client subscribes bench.ps, another publishes N messages; rate = received / elapsed
//   req     a responder on bench.req echoes; another client makes N sequential requests;
//           p50/p90/p99 latency in microseconds
//
// The server is NATS_URL (default nats://127.0.0.1:4222). Prints one line, the same shape as
// the C client's bench, with the peak RSS of this process.
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import NATSWire
import NIOCore

@main
struct NATSWireBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 4, let n = Int(arguments[2]), n > 0, let size = Int(arguments[3]), size >= 0 else {
            complain("usage: natswire-bench pub|pubsub|req N SIZE")
            exit(2)
        }
        let url = ProcessInfo.processInfo.environment["NATS_URL"] ?? "nats://127.0.0.1:4222"
        let payload = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0) })
        switch arguments[1] {
        case "pub": try await pub(url: url, n: n, payload: payload)
        case "pubsub": try await pubsub(url: url, n: n, payload: payload)
        case "req": try await req(url: url, n: n, payload: payload)
        default:
            complain("natswire-bench: unknown mode '\(arguments[1])'")
            exit(2)
        }
    }

    static func client(_ url: String, name: String) async throws -> NATSClient {
        var options = NATSClientOptions(servers: [url])
        options.name = name
        let client = try NATSClient(options: options)
        try await client.connect()
        return client
    }

    static func pub(url: String, n: Int, payload: ByteBuffer) async throws {
        let client = try await client(url, name: "natswire-bench-pub")
        let start = ContinuousClock.now
        for _ in 0..<n {
            try await client.publish(payload, to: "bench.pub")
        }
        try await client.flush(timeout: .seconds(60))
        let elapsed = ContinuousClock.now - start
        print("natswire pub msgs=\(n) size=\(payload.readableBytes) rate=\(rate(n, elapsed)) peak_rss_mb=\(peakRSS())")
        await client.close()
    }

    static func pubsub(url: String, n: Int, payload: ByteBuffer) async throws {
        let subscriber = try await client(url, name: "natswire-bench-sub")
        let publisher = try await client(url, name: "natswire-bench-pub")
        let subscription = try await subscriber.subscribe(to: "bench.ps", pendingMessages: n, pendingBytes: Int.max)
        try await subscriber.flush()
        let start = ContinuousClock.now
        let receiver = Task { () -> (Int, ContinuousClock.Instant) in
            var received = 0
            var last = start
            for await _ in subscription {
                received += 1
                if received == n {
                    last = ContinuousClock.now
                    break
                }
            }
            return (received, last)
        }
        for _ in 0..<n {
            try await publisher.publish(payload, to: "bench.ps")
        }
        try await publisher.flush(timeout: .seconds(60))
        let watchdog = Task {
            try await Task.sleep(for: .seconds(30))
            receiver.cancel()
        }
        let (received, last) = await receiver.value
        watchdog.cancel()
        if received < n {
            complain("natswire-bench: pubsub received only \(received) of \(n)")
        }
        print("natswire pubsub msgs=\(received) size=\(payload.readableBytes) rate=\(rate(received, last - start)) peak_rss_mb=\(peakRSS())")
        await publisher.close()
        await subscriber.close()
    }

    static func req(url: String, n: Int, payload: ByteBuffer) async throws {
        let responder = try await client(url, name: "natswire-bench-responder")
        let requester = try await client(url, name: "natswire-bench-requester")
        let service = try await responder.subscribe(to: "bench.req")
        // Both loops run on their client's event loop (NATSClient.taskExecutor): no thread hop
        // between the socket and the code, the counterpart of the C client's send-ASAP option.
        let serving = Task(executorPreference: responder.taskExecutor) {
            for await request in service {
                if let reply = request.replyTo {
                    try await responder.publish(request.payload, to: reply)
                }
            }
        }
        try await responder.flush()
        let (latencies, elapsed) = try await Task(executorPreference: requester.taskExecutor) {
            var latencies: [Duration] = []
            latencies.reserveCapacity(n)
            let start = ContinuousClock.now
            for _ in 0..<n {
                let sent = ContinuousClock.now
                let reply = try await requester.request(payload, to: "bench.req", timeout: .seconds(5))
                latencies.append(ContinuousClock.now - sent)
                precondition(reply.payload.readableBytes == payload.readableBytes, "reply has the wrong size")
            }
            return (latencies, ContinuousClock.now - start)
        }.value
        var sorted = latencies
        sorted.sort()
        func percentile(_ p: Double) -> String {
            let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))
            return fixed(microseconds(sorted[index]), digits: 1)
        }
        print("natswire req msgs=\(n) size=\(payload.readableBytes) rate=\(rate(n, elapsed)) p50_us=\(percentile(0.50)) p90_us=\(percentile(0.90)) p99_us=\(percentile(0.99)) peak_rss_mb=\(peakRSS())")
        serving.cancel()
        await requester.close()
        await responder.close()
    }

    static func microseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
    }

    static func rate(_ count: Int, _ elapsed: Duration) -> String {
        let seconds = microseconds(elapsed) / 1e6
        return seconds > 0 ? fixed(Double(count) / seconds, digits: 0) : "0"
    }

    /// VmHWM from /proc/self/status, in MB.
    static func peakRSS() -> String {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Double(line.split(whereSeparator: { $0 == " " || $0 == "\t" })[1])
        else { return "0" }
        return fixed(kb / 1024, digits: 1)
    }

    /// `value` with `digits` decimals (0 or 1), without Foundation's String(format:).
    static func fixed(_ value: Double, digits: Int) -> String {
        let scale = digits == 0 ? 1.0 : 10.0
        let scaled = Int((value * scale).rounded())
        return digits == 0 ? String(scaled) : "\(scaled / 10).\(abs(scaled % 10))"
    }

    static func complain(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
