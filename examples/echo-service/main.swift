// A small native service for Nex, deployed by `make run` with `nexctl devrun`.
//
// It connects to NATS_URL (from its deploy environment), answers requests on
// `echo.<workload name>` with the request body, and logs a line per request and a
// heartbeat every few seconds: the node turns every line into a log record on
// $NEX.logs.<ns>.<node>.<workload>.<id>. SIGTERM (a stop) ends it cleanly.
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import NATSWire

@main
struct EchoService {
    static func main() async throws {
        let environment = ProcessInfo.environment
        let url = environment["NATS_URL"] ?? "nats://127.0.0.1:4222"
        let name = environment["NEX_WORKLOAD_NAME"] ?? "echo"
        let subject = "echo.\(name)"

        var options = NATSClientOptions(servers: [url])
        options.name = "echo-service \(environment["NEX_WORKLOAD_ID"] ?? "")"
        options.maxReconnectAttempts = -1
        let client = try NATSClient(options: options)
        try await client.connect()
        let requests = try await client.subscribe(to: subject)
        try await client.flush()
        say("echo-service \(name) listening on \(subject) at \(url.redactingURLCredentials)")

        let stop = onSIGTERM {
            say("echo-service \(name): SIGTERM, stopping")
            Task { try? await requests.unsubscribe() }
        }

        let heartbeat = Task {
            var beats = 0
            while (try? await Task.sleep(for: .seconds(5))) != nil {
                beats += 1
                say("echo-service \(name): alive (\(beats * 5) s)")
            }
        }
        var served = 0
        for await request in requests {
            served += 1
            say("echo-service \(name): request \(served): \(request.string)")
            if let reply = request.replyTo { try await client.publish(request.payload, to: reply) }
        }
        heartbeat.cancel()
        stop.cancel()
        await client.close()
        say("echo-service \(name): served \(served) requests, bye")
    }
}

/// Calls `handler` (on a dispatch queue, not the main actor) when SIGTERM arrives.
func onSIGTERM(_ handler: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
    signal(SIGTERM, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
    source.setEventHandler(handler: handler)
    source.resume()
    return source
}

/// One line on stdout, written at once (stdio would hold it back in a buffer when stdout is a pipe).
func say(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(1, $0, strlen($0)) }
}

/// The process environment, without Foundation.
enum ProcessInfo {
    static var environment: [String: String] {
        var result: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            cursor += 1
        }
        return result
    }
}
