import NexWorkloads
import NATSWire
import NexAgentBus
import NIOCore

extension HostServicesServer {
    /// `messaging`: `publish` and `request` (header `x-subject`) on the workload's connection;
    /// `requestMany` is not supported (501).
    ///
    /// Reserved subjects (``reservedSubjectReason(_:inboxPrefix:)``) are refused whatever the
    /// configuration says; `denied_subjects` refuses more.
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
        let connection = scope.connection
        if let reason = Self.reservedSubjectReason(subject, inboxPrefix: connection.options.inboxPrefix) {
            throw HostServiceFailure.forbidden("messaging to \(subject) is not allowed: \(reason)")
        }
        if let pattern = configuration.messaging.deniedSubjects.first(where: { SubjectPattern.matches($0, subject) }) {
            throw HostServiceFailure.forbidden("messaging to \(subject) is not allowed (denied_subjects: \(pattern))")
        }
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
            reply = try await connection.request(body, to: subject, timeout: timeout)
        } catch NATSError.Code.noResponders {
            throw HostServiceFailure(503, "no responders on \(subject)")
        } catch NATSError.Code.timeout {
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
        case let error as NATSError where error.code == .payloadTooLarge:
            return HostServiceFailure(
                413, "\(operation): \(error.size ?? 0) bytes exceed the NATS server's max payload of \(error.limit ?? 0) bytes")
        case NATSError.Code.invalidSubject, NATSError.Code.invalidHeader:
            return .badRequest("\(operation): \(error)")
        case NATSError.Code.permissionViolation:
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

    /// Why no function may publish or request to `subject`, whatever `denied_subjects` says;
    /// nil when it may.
    ///
    /// - Every subject whose first token starts with `$`: the JetStream API (`$JS.>`), key-value
    ///   and object store data (`$KV.>`, `$O.>`), the system account (`$SYS.>`), Nex control
    ///   (`$NEX.>`) and whatever else NATS reserves. A function reaches its own buckets through
    ///   `kv` and `objectstore`, which name the bucket themselves.
    /// - Every reply inbox: a first token starting with `_INBOX` or being `_R_` (as trigger
    ///   subjects, ``TriggerSubjects/alwaysDenied``), or the connection's own `inboxPrefix`. A function never needs one (the node answers trigger requests itself, and
    ///   `request` waits on the node's inbox); publishing there would forge replies to other clients.
    static func reservedSubjectReason(_ subject: String, inboxPrefix: String) -> String? {
        let first = subject.prefix { $0 != "." }
        if first.hasPrefix("$") {
            return "subjects whose first token starts with '$' are reserved (JetStream, key-value, object store, system, control)"
        }
        if first.hasPrefix("_INBOX") || first == "_R_" || subject == inboxPrefix || subject.hasPrefix(inboxPrefix + ".") {
            return "reply inboxes belong to other clients"
        }
        return nil
    }
}
