// A short tour of NATSWire against a real server: publish/subscribe with headers,
// request/reply through the muxed inbox, and a request nobody answers.
import Foundation
import NATSWire
import NIOCore

let url = ProcessInfo.processInfo.environment["NATS_URL"] ?? "nats://127.0.0.1:4222"
let client = try NATSClient(url: url)
try await client.connect()
print("connected to \(client.connectedServer ?? url), server \(client.serverInfo?.version ?? "?")")

// Publish and subscribe, with headers.
let greetings = try await client.subscribe(to: "demo.greet.*")
var headers = NATSHeaders()
headers.append("Demo-Trace", "42")
try await client.publish("hello from NATSWire", to: "demo.greet.world", headers: headers)
for await message in greetings {
    print("received on \(message.subject): \(message.string) (Demo-Trace: \(message.headers?["Demo-Trace"] ?? "-"))")
    break
}

// A responder, then requests through the client's single muxed inbox.
let service = try await client.subscribe(to: "demo.upper")
let responder = Task {
    for await request in service {
        guard let reply = request.replyTo else { continue }
        try await client.publish(request.string.uppercased(), to: reply)
    }
}
try await client.flush()
for word in ["nats", "swift", "nex"] {
    let answer = try await client.request(word, to: "demo.upper", timeout: .seconds(2))
    print("request \(word) -> \(answer.string)")
}

do {
    _ = try await client.request("anyone?", to: "demo.nobody", timeout: .seconds(2))
} catch let error as NATSError {
    print("request to demo.nobody: \(error)")
}

responder.cancel()
try await client.drain()
print("drained and closed")
