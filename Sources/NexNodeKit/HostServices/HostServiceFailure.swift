/// A host-service request that cannot be served: the `x-nex-hs-code` (HTTP-like) and the
/// `x-nex-hs-msg` the agent gets, optionally with a body (the `http` service's JSON).
struct HostServiceFailure: Error, Sendable, Equatable, CustomStringConvertible {
    var code: Int
    var message: String
    var body: [UInt8] = []

    init(_ code: Int, _ message: String, body: [UInt8] = []) {
        self.code = code
        self.message = message
        self.body = body
    }

    var description: String { "\(code) \(message)" }

    static func badRequest(_ message: String) -> Self { .init(400, message) }
    static func forbidden(_ message: String) -> Self { .init(403, message) }
    static func notFound(_ message: String) -> Self { .init(404, message) }
    static func internalError(_ message: String) -> Self { .init(500, message) }

    /// The request lacks a header the method needs.
    static func missingHeader(_ name: String) -> Self { .init(400, "missing header \(name)") }
}
