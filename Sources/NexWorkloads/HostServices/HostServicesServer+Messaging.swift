import NATSWire
import NexAgentBus
import NIOCore

extension HostServicesServer {
    /// `messaging`: `publish` and `request` (header `x-subject`) on the workload's connection;
    /// `requestMany` is not supported (501).
    func serveMessaging(_ method: String, scope: HostServiceScope, headers: NATSHeaders, body: [UInt8]) async throws
        -> HostServiceReply
    {
        switch method {
        case "publish", "request": break
        case "requestMany": throw HostServiceFailure(501, "messaging requestMany is not supported")
        default: throw Self.unknownMethod(method, of: "messaging")
        }
        let subject = try Self.header("x-subject", in: headers)
        try Self.validateMessagingSubject(subject)
        if let pattern = configuration.messaging.deniedSubjects.first(where: { SubjectPattern.matches($0, subject) }) {
            throw HostServiceFailure.forbidden("messaging to \(subject) is not allowed (denied_subjects: \(pattern))")
        }
        let connection = scope.connection
        if method == "publish" {
            do {
                try await connection.publish(body, to: subject)
            } catch {
                throw Self.messagingFailure(error, "messaging publish to \(subject)")
            }
            return Self.ok(Self.success)
        }
        let timeout = configuration.messaging.requestTimeout
        let reply: NATSMessage
        do {
            reply = try await connection.request(body, to: subject, timeout: .nanoseconds(timeout.nanoseconds))
        } catch NATSError.noResponders {
            throw HostServiceFailure(503, "no responders on \(subject)")
        } catch NATSError.timeout {
            throw HostServiceFailure(504, "no reply from \(subject) within \(timeout.milliseconds) ms")
        } catch {
            throw Self.messagingFailure(error, "messaging request to \(subject)")
        }
        // The responder's headers travel with the result; ours (x-nex-hs-*) win.
        var replyHeaders: [String: String] = [:]
        for field in reply.headers ?? NATSHeaders() where replyHeaders[field.name] == nil {
            replyHeaders[field.name] = field.value
        }
        return Self.ok(Array(reply.payload.readableBytesView), headers: replyHeaders)
    }

    private static func messagingFailure(_ error: any Error, _ operation: String) -> HostServiceFailure {
        switch error {
        case NATSError.payloadTooLarge(let size, let maxPayload):
            return HostServiceFailure(413, "\(operation): \(size) bytes exceed the NATS server's max payload of \(maxPayload) bytes")
        case NATSError.invalidSubject, NATSError.invalidHeader:
            return .badRequest("\(operation): \(error)")
        case NATSError.permissionViolation:
            return .forbidden("\(operation): \(error)")
        default:
            return .internalError("\(operation) failed: \(error)")
        }
    }

    /// A concrete subject: non-empty tokens, no blanks or control characters, no wildcards.
    static func validateMessagingSubject(_ subject: String) throws(HostServiceFailure) {
        do {
            try NATSSubject.validatePublish(subject)
        } catch {
            throw .badRequest("\(error)")
        }
        for token in subject.split(separator: ".", omittingEmptySubsequences: false) {
            if token.isEmpty { throw .badRequest("invalid subject '\(subject)': empty token") }
            if token.contains("*") || token.contains(">") {
                throw .badRequest("invalid subject '\(subject)': wildcards cannot be published to")
            }
        }
    }

}
