import FoundationEssentials

/// The reply envelope of every control request: `{"type","data","error"}`.
///
/// On success `data` holds the response and `error` is absent; on failure Nex 0.2 sends
/// `"data": ""` and the reason in `error`, and so do we.
package struct ControlEnvelope<Payload: Codable & Sendable>: Codable, Sendable {
    /// `io.nats.nex.v1.<kind>_response`.
    package var type: String
    /// `data`: the response; nil when the node answered with an error.
    package var data: Payload?
    /// `error`: the node's reason for refusing the request; nil on success.
    package var error: String?

    /// A success envelope of `type` carrying `data`.
    package init(type: String, data: Payload) {
        self.type = type
        self.data = data
        self.error = nil
    }

    enum CodingKeys: String, CodingKey { case type, data, error }

    /// Decodes an envelope; `data` is decoded only when there is no `error` (a failure carries
    /// `"data": ""`).
    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(String.self, forKey: .type)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        // A failure carries `"data": ""`; only decode the payload when there is no error.
        data = error == nil ? try c.decode(Payload.self, forKey: .data) : nil
    }

    /// Encodes `type` and `data`, or, for a failure, `"data": ""` and `error`.
    package func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        if let error {
            try c.encode("", forKey: .data)
            try c.encode(error, forKey: .error)
        } else {
            try c.encode(data, forKey: .data)
        }
    }
}

/// The `type` strings of the control responses.
package enum ControlResponseType {
    /// `io.nats.nex.v1.ping_response`: the reply to `$NEX.PING` and `$NEX.WPING`.
    package static let ping = "io.nats.nex.v1.ping_response"
    /// `io.nats.nex.v1.auction_response`: the reply to `$NEX.AUCTION`.
    package static let auction = "io.nats.nex.v1.auction_response"
    /// `io.nats.nex.v1.info_response`: the reply to `$NEX.INFO`.
    package static let info = "io.nats.nex.v1.info_response"
    /// `io.nats.nex.v1.run_response`: the reply to `$NEX.DEPLOY`.
    package static let run = "io.nats.nex.v1.run_response"
    /// `io.nats.nex.v1.stop_response`: the reply to `$NEX.STOP`.
    package static let stop = "io.nats.nex.v1.stop_response"
    /// `io.nats.nex.v1.lameduck_response`: the reply to `$NEX.LAMEDUCK`.
    package static let lameDuck = "io.nats.nex.v1.lameduck_response"
}

/// A failure envelope: `{"type": T, "data": "", "error": "<reason>"}`.
struct ControlFailure: Encodable {
    var type: String
    var error: String

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: ControlEnvelope<String>.CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encode("", forKey: .data)
        try c.encode(error, forKey: .error)
    }
}
