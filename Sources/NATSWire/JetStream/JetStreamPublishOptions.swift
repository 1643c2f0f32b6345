/// The expectations and deduplication id of a JetStream publish, sent as headers.
///
/// A publish whose expectation does not hold is refused by the server with a ``JetStreamError``
/// (err_code ``JetStreamError/wrongLastSequence`` for the sequence expectations).
public struct JetStreamPublishOptions: Sendable, Equatable {
    /// `Nats-Msg-Id`: a message with an id already seen within the stream's duplicate window is not stored again.
    public var messageID: String?
    /// `Nats-Expected-Stream`: the stream that must store the message.
    public var expectedStream: String?
    /// `Nats-Expected-Last-Sequence`: the stream's last sequence must be this.
    public var expectedLastSequence: UInt64?
    /// `Nats-Expected-Last-Subject-Sequence`: the last sequence on this subject must be this (0: no message yet).
    public var expectedLastSubjectSequence: UInt64?
    /// `Nats-Expected-Last-Msg-Id`: the last message of the stream must have had this id.
    public var expectedLastMessageID: String?

    /// Options with the given headers set; nil leaves a header out.
    public init(
        messageID: String? = nil, expectedStream: String? = nil, expectedLastSequence: UInt64? = nil,
        expectedLastSubjectSequence: UInt64? = nil, expectedLastMessageID: String? = nil
    ) {
        self.messageID = messageID
        self.expectedStream = expectedStream
        self.expectedLastSequence = expectedLastSequence
        self.expectedLastSubjectSequence = expectedLastSubjectSequence
        self.expectedLastMessageID = expectedLastMessageID
    }

    /// Adds the headers of the options that are set.
    func apply(to headers: inout NATSHeaders) {
        if let messageID { headers["Nats-Msg-Id"] = messageID }
        if let expectedStream { headers["Nats-Expected-Stream"] = expectedStream }
        if let expectedLastSequence { headers["Nats-Expected-Last-Sequence"] = String(expectedLastSequence) }
        if let expectedLastSubjectSequence {
            headers["Nats-Expected-Last-Subject-Sequence"] = String(expectedLastSubjectSequence)
        }
        if let expectedLastMessageID { headers["Nats-Expected-Last-Msg-Id"] = expectedLastMessageID }
    }
}
