import FoundationEssentials
import NIOCore

extension JetStreamContext {
    private struct GetRequest: Encodable {
        var seq: UInt64?
        var lastBySubject: String?
        var nextBySubject: String?

        enum CodingKeys: String, CodingKey { case seq, lastBySubject = "last_by_subj", nextBySubject = "next_by_subj" }

        init(_ selector: StoredMessage.Selector) {
            switch selector {
            case .sequence(let sequence): seq = sequence
            case .lastBySubject(let subject): lastBySubject = subject
            case .nextBySubject(let subject, let from):
                nextBySubject = subject
                seq = from
            }
        }
    }

    private struct GetResponse: Decodable {
        struct Message: Decodable {
            var subject: String
            var seq: UInt64
            var hdrs: String?
            var data: String?
            var time: String
        }
        var message: Message
    }

    /// Reads one message with a direct get (`DIRECT.GET`), answered by any server of the stream
    /// without going through its leader. Needs a stream with `allow_direct` (nats-server 2.9+).
    ///
    /// A missing message throws a ``JetStreamError`` with code 404 (``JetStreamError/isNotFound``).
    /// A stream without `allow_direct` (or a missing stream) is not answered: servers before 2.10
    /// let the request time out (``NATSError/timeout(operation:seconds:)``), later ones report no
    /// responders (``JetStreamError/Kind/notAvailable``).
    public func directGet(stream: String, _ selector: StoredMessage.Selector) async throws -> StoredMessage {
        try Self.validateName(stream, what: "stream")
        let subject: String
        let payload: ByteBuffer
        if case .lastBySubject(let last) = selector, !last.contains("*"), !last.hasSuffix(">") {
            try NATSSubject.validatePublish(last)
            subject = apiSubject("DIRECT.GET.\(stream).\(last)")
            payload = ByteBuffer()
        } else {
            subject = apiSubject("DIRECT.GET.\(stream)")
            payload = try JetStreamJSON.encode(GetRequest(selector))
        }
        let reply: NATSMessage
        do {
            reply = try await apiMessage(subject, payload: payload)
        } catch let error as JetStreamError where error.kind == .notAvailable {
            throw JetStreamError.notAvailable(
                subject, "no responders: the stream does not exist or does not allow direct gets")
        }
        return try Self.storedMessage(fromDirectReply: reply, subject: subject)
    }

    /// Reads one message through the stream leader (`STREAM.MSG.GET`); works on every stream.
    ///
    /// A missing message throws a ``JetStreamError`` with err_code ``JetStreamError/noMessageFound``.
    public func messageGet(stream: String, _ selector: StoredMessage.Selector) async throws -> StoredMessage {
        try Self.validateName(stream, what: "stream")
        let path = "STREAM.MSG.GET.\(stream)"
        let response: GetResponse = try await apiRequest(path, body: GetRequest(selector))
        let message = response.message
        let subject = apiSubject(path)
        var headers: NATSHeaders?
        if let encoded = message.hdrs, !encoded.isEmpty {
            guard let bytes = Data(base64Encoded: encoded) else {
                throw JetStreamError.invalidReply(subject, "headers of message \(message.seq) are not base64")
            }
            do {
                headers = try bytes.withUnsafeBytes { raw throws(NATSProtocolError) in try NATSHeaders(parsing: raw) }
            } catch {
                throw JetStreamError.invalidReply(subject, "headers of message \(message.seq): \(error)")
            }
        }
        var payload = ByteBuffer()
        if let encoded = message.data, !encoded.isEmpty {
            guard let bytes = Data(base64Encoded: encoded) else {
                throw JetStreamError.invalidReply(subject, "data of message \(message.seq) is not base64")
            }
            payload = ByteBuffer(bytes: bytes)
        }
        guard let time = RFC3339.parse(message.time) else {
            throw JetStreamError.invalidReply(subject, "bad time '\(message.time)' of message \(message.seq)")
        }
        return StoredMessage(subject: message.subject, sequence: message.seq, headers: headers, payload: payload, time: time)
    }

    /// A direct-get reply: the message with `Nats-*` headers, or a status (404 not found, 408...).
    static func storedMessage(fromDirectReply reply: NATSMessage, subject: String) throws -> StoredMessage {
        if let status = reply.status, status >= 300 || reply.headers?["Nats-Sequence"] == nil {
            if status == 503 { throw JetStreamError.notAvailable(subject, "no responders") }
            let text = reply.headers?.statusDescription ?? "status \(status)"
            let errCode = status == 404 ? JetStreamError.noMessageFound : 0
            throw JetStreamError(code: status, errCode: errCode, errorDescription: text, subject: subject)
        }
        guard let headers = reply.headers else {
            // A JSON error (an invalid request) comes without headers.
            if reply.payload.readableBytes > 0 {
                struct Nothing: Decodable {}
                _ = try JetStreamJSON.decodeReply(Nothing.self, from: reply, subject: subject)
            }
            throw JetStreamError.invalidReply(subject, "direct get reply without headers")
        }
        guard let messageSubject = headers["Nats-Subject"],
              let sequence = headers["Nats-Sequence"].flatMap({ UInt64($0) }),
              let time = headers["Nats-Time-Stamp"].flatMap(RFC3339.parse)
        else {
            throw JetStreamError.invalidReply(subject, "direct get reply lacks Nats-Subject, Nats-Sequence or Nats-Time-Stamp")
        }
        return StoredMessage(subject: messageSubject, sequence: sequence, headers: headers, payload: reply.payload, time: time)
    }

    /// A direct get when `preferDirect` (the stream allows it), falling back to a message get
    /// when no server answers direct gets; else a message get. What the stores read with.
    func readMessage(stream: String, _ selector: StoredMessage.Selector, preferDirect: Bool) async throws -> StoredMessage {
        guard preferDirect else { return try await messageGet(stream: stream, selector) }
        do {
            return try await directGet(stream: stream, selector)
        } catch let error where Self.directGetUnanswered(error) {
            return try await messageGet(stream: stream, selector)
        }
    }

    /// Whether a direct get failed for want of an answer (no responders, or no reply in time), so
    /// that a message get through the stream leader is worth trying.
    static func directGetUnanswered(_ error: any Error) -> Bool {
        if let error = error as? JetStreamError { return error.kind == .notAvailable }
        if NATSError.Code.timeout ~= error { return true }
        return false
    }
}
