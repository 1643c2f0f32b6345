import FoundationEssentials
import NIOCore

/// JSON coding of JetStream API bodies and replies.
enum JetStreamJSON {
    /// The error object of a failed API reply.
    struct APIErrorBody: Decodable, Error {
        var code: Int
        var errCode: Int
        var description: String

        enum CodingKeys: String, CodingKey {
            case code, errCode = "err_code", description
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            code = try c.decodeIfPresent(Int.self, forKey: .code) ?? 0
            errCode = try c.decodeIfPresent(Int.self, forKey: .errCode) ?? 0
            description = try c.decodeIfPresent(String.self, forKey: .description) ?? ""
        }
    }

    /// A reply: either `{"error":{...}}` or the response itself.
    struct Reply<Response: Decodable>: Decodable {
        var result: Result<Response, APIErrorBody>

        enum CodingKeys: String, CodingKey { case error }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            if let error = try c.decodeIfPresent(APIErrorBody.self, forKey: .error) {
                result = .failure(error)
            } else {
                result = .success(try Response(from: decoder))
            }
        }
    }

    static func encode(_ value: some Encodable) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return ByteBuffer(bytes: data)
    }

    /// Decodes a JetStream reply, turning an `error` object into ``JetStreamError``.
    static func decodeReply<Response: Decodable>(
        _ type: Response.Type, from message: NATSMessage, subject: String
    ) throws -> Response {
        if message.status == 503 {
            throw JetStreamError.notAvailable(subject, "no responders")
        }
        guard message.payload.readableBytes > 0 else {
            let status = message.status.map { " (status \($0))" } ?? ""
            throw JetStreamError.invalidReply(subject, "empty reply\(status)")
        }
        let reply: Reply<Response>
        do {
            reply = try message.payload.withUnsafeReadableBytes { bytes in
                try JSONDecoder().decode(Reply<Response>.self, from: Data(bytes))
            }
        } catch {
            throw JetStreamError.invalidReply(subject, "cannot decode \(Response.self): \(error)")
        }
        switch reply.result {
        case .success(let response):
            return response
        case .failure(let body):
            throw JetStreamError(code: body.code, errCode: body.errCode, errorDescription: body.description, subject: subject)
        }
    }

    /// Decodes plain JSON (no error envelope), e.g. object metadata.
    static func decode<Value: Decodable>(_ type: Value.Type, from payload: ByteBuffer) throws -> Value {
        try payload.withUnsafeReadableBytes { bytes in
            try JSONDecoder().decode(Value.self, from: Data(bytes))
        }
    }
}
