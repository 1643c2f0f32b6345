/// A failure reported by JetStream, or a JetStream exchange that could not be completed.
///
/// When the server answers an API request (or a publish) with
/// `{"error":{"code":…,"err_code":…,"description":…}}`, the three fields are carried unchanged in
/// ``code``, ``errCode`` and ``errorDescription``, and ``kind`` is ``Kind/api``. Status-only
/// replies (a direct get answered `NATS/1.0 404 Message Not Found`) are reported the same way,
/// with the status as ``code``. The other kinds describe failures found on the client side.
public struct JetStreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Kind: Sendable, Equatable {
        /// The server answered with an error (`code`, `err_code`, `description`).
        case api
        /// Nobody answered the request (status 503): JetStream is not enabled for the account, the
        /// domain is wrong, or no stream listens on the subject published to.
        case notAvailable
        /// The server's answer could not be understood.
        case invalidReply
        /// A request was refused before anything was sent (a bad stream name, say).
        case invalidArgument
    }

    /// Server error, no responders, bad reply or refused argument.
    public var kind: Kind
    /// The HTTP-like status of the failure (`404`, `400`, `503`...); 0 when there is none.
    public var code: Int
    /// The JetStream error code (`err_code`, e.g. 10071 wrong last sequence); 0 when there is none.
    public var errCode: Int
    /// The server's `description`, or the client's reason for the other kinds.
    public var errorDescription: String
    /// The subject the request or publish went to.
    public var subject: String

    /// An error with the given fields (the server's, or the client's for the other kinds).
    package init(kind: Kind = .api, code: Int, errCode: Int, errorDescription: String, subject: String) {
        self.kind = kind
        self.code = code
        self.errCode = errCode
        self.errorDescription = errorDescription
        self.subject = subject
    }

    /// One line naming the API subject and what went wrong (with the server's `code` and `err_code`
    /// for an API error).
    public var description: String {
        switch kind {
        case .api:
            return "JetStream error on '\(subject)': \(errorDescription) (code \(code), err_code \(errCode))"
        case .notAvailable:
            return "JetStream not available on '\(subject)': \(errorDescription)"
        case .invalidReply:
            return "invalid JetStream reply on '\(subject)': \(errorDescription)"
        case .invalidArgument:
            return "invalid JetStream request '\(subject)': \(errorDescription)"
        }
    }

    /// Whether the server reported that the requested stream, message or consumer does not exist.
    public var isNotFound: Bool {
        kind == .api && (code == 404 || [Self.streamNotFound, Self.noMessageFound, Self.consumerNotFound].contains(errCode))
    }

    /// Whether a publish was refused because an expected last (subject) sequence did not match.
    public var isWrongLastSequence: Bool {
        kind == .api && (errCode == Self.wrongLastSequence || errCode == Self.wrongLastSequenceConstant)
    }

    // MARK: Well-known `err_code` values (nats-server `errors.json`)

    /// `JSConsumerNotFoundErr`.
    public static let consumerNotFound = 10014
    /// `JSNoMessageFoundErr`.
    public static let noMessageFound = 10037
    /// `JSNotEnabledForAccountErr`.
    public static let notEnabledForAccount = 10039
    /// `JSStreamNameExistErr`: a stream of that name exists with a different configuration.
    public static let streamNameInUse = 10058
    /// `JSStreamNotFoundErr`.
    public static let streamNotFound = 10059
    /// `JSStreamWrongLastMsgIDErrF`.
    public static let wrongLastMsgID = 10070
    /// `JSStreamWrongLastSequenceErrF`: the expected last (subject) sequence did not match.
    public static let wrongLastSequence = 10071
    /// `JSNotEnabledErr`.
    public static let notEnabled = 10076
    /// `JSStreamWrongLastSequenceConstantErr`, sent by newer servers for some expected-sequence failures.
    public static let wrongLastSequenceConstant = 10164

    static func notAvailable(_ subject: String, _ reason: String) -> JetStreamError {
        JetStreamError(kind: .notAvailable, code: 503, errCode: 0, errorDescription: reason, subject: subject)
    }

    static func invalidReply(_ subject: String, _ reason: String) -> JetStreamError {
        JetStreamError(kind: .invalidReply, code: 0, errCode: 0, errorDescription: reason, subject: subject)
    }

    static func invalidArgument(_ subject: String, _ reason: String) -> JetStreamError {
        JetStreamError(kind: .invalidArgument, code: 0, errCode: 0, errorDescription: reason, subject: subject)
    }
}
