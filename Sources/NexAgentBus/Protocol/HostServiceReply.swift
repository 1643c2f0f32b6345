import NATSWire

/// A host service's answer, carried on the agent bus as a NATS reply: the code in
/// `x-nex-hs-code` (HTTP-like: 200, 400, 404, 413, 429, 500, 503), its text in `x-nex-hs-msg`,
/// the service's own headers beside them, and the result as the payload.
public struct HostServiceReply: Sendable, Equatable {
    public static let codeHeader = "x-nex-hs-code"
    public static let messageHeader = "x-nex-hs-msg"

    public var code: Int
    public var message: String
    public var headers: [String: String]
    public var body: [UInt8]

    public init(code: Int, message: String, headers: [String: String] = [:], body: [UInt8] = []) {
        self.code = code; self.message = message; self.headers = headers; self.body = body
    }

    public var isSuccess: Bool { code == 200 }

    /// Reads a reply from the node. A reply without a code is a 500.
    public init(_ reply: NATSMessage) {
        var headers: [String: String] = [:]
        for field in reply.headers ?? NATSHeaders() { headers[field.name] = field.value }
        let code = reply.headers?[Self.codeHeader].flatMap { Int($0) } ?? 500
        let message = reply.headers?[Self.messageHeader] ?? (code == 200 ? "OK" : "host service error")
        self.init(code: code, message: message, headers: headers, body: Array(reply.payload.readableBytesView))
    }

    /// The reply's headers on the bus: the code and message first, then the service's own
    /// (sorted; none may pose as `x-nex-hs-*`), every value on one line.
    public var natsHeaders: NATSHeaders {
        var fields = NATSHeaders()
        fields.append(Self.codeHeader, String(code))
        fields.append(Self.messageHeader, Self.oneLine(message))
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) where !name.lowercased().hasPrefix("x-nex-hs-") {
            fields.append(name, Self.oneLine(value))
        }
        return fields
    }

    /// Header values may not hold line breaks; error texts sometimes do.
    static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\r" || $0 == "\n" || $0 == "\r\n" ? " " : $0 })
    }
}
