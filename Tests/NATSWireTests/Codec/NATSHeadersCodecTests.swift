import NIOCore
import Testing
@testable import NATSWire

/// The ``NATSHeaders`` API: case-insensitive lookup, repeated fields, validation.
@Suite struct NATSHeadersCodecTests {
    @Test func subscriptIgnoresCase() {
        var headers = NATSHeaders()
        headers.append("Content-Type", "text/plain")
        #expect(headers["Content-Type"] == "text/plain")
        #expect(headers["content-type"] == "text/plain")
        #expect(headers["CONTENT-TYPE"] == "text/plain")
        #expect(headers["Content-Typ"] == nil)
        #expect(headers["Content-Type "] == nil)
        #expect(headers["missing"] == nil)
    }

    @Test func caseFoldingIsForLettersOnly() {
        // '[' is '{' with bit 5 cleared, '@' is '`': they are different names.
        let headers = NATSHeaders(["a{b": "1", "x@y": "2"])
        #expect(headers["A{B"] == "1")
        #expect(headers["a[b"] == nil)
        #expect(headers["x`y"] == nil)
        #expect(headers["X@Y"] == "2")
    }

    @Test func subscriptGetReturnsTheFirstOfRepeatedFields() {
        let headers = NATSHeaders(["X-A": "1", "x-a": "2", "X-B": "3"])
        #expect(headers["x-A"] == "1")
    }

    @Test func subscriptSetReplacesEveryFieldOfThatName() {
        var headers = NATSHeaders(["X-A": "1", "Other": "o", "x-a": "2"])
        headers["X-a"] = "3"
        #expect(headers.fields == [.init(name: "Other", value: "o"), .init(name: "X-a", value: "3")])
        headers["x-A"] = nil
        #expect(headers.fields == [.init(name: "Other", value: "o")])
        headers["New"] = "n"
        #expect(headers.values(for: "new") == ["n"])
    }

    @Test func valuesForReturnsEveryValueInOrder() {
        var headers = NATSHeaders()
        headers.append("Accept", "a")
        headers.append("Other", "x")
        headers.append("ACCEPT", "b")
        headers.append("accept", "c")
        #expect(headers.values(for: "Accept") == ["a", "b", "c"])
        #expect(headers.values(for: "aCcEpT") == ["a", "b", "c"])
        #expect(headers.values(for: "missing") == [])
    }

    @Test func fieldsKeepOrderAndCaseAndIterate() {
        let headers = NATSHeaders(["b": "1", "A": "2", "b": "3"])
        #expect(headers.map(\.name) == ["b", "A", "b"])
        #expect(headers.map(\.value) == ["1", "2", "3"])
        #expect(headers.fields.count == 3)
    }

    @Test func isEmptyCountsTheStatus() {
        #expect(NATSHeaders().isEmpty)
        #expect(!NATSHeaders(status: 503).isEmpty)
        #expect(!NATSHeaders(["a": "b"]).isEmpty)
    }

    @Test func equalityIsOrderSensitive() {
        #expect(NATSHeaders(["a": "1", "b": "2"]) == NATSHeaders(["a": "1", "b": "2"]))
        #expect(NATSHeaders(["a": "1", "b": "2"]) != NATSHeaders(["b": "2", "a": "1"]))
        #expect(NATSHeaders(["a": "1"]) != NATSHeaders(["A": "1"]))
    }

    @Test func validateAcceptsTypicalHeaders() {
        let headers = NATSHeaders([
            "Nats-Msg-Id": "abc", "KV-Operation": "DEL", "X-Empty": "", "Weird!#$%&*+.^_`|~": "v: with colon",
            "Utf8-Value": "grüße", "Tabbed": "a\tb",
        ])
        #expect(throws: Never.self) { try headers.validate() }
        #expect(throws: Never.self) { try NATSHeaders().validate() }
    }

    @Test(arguments: ["a:b", ":", "", "a b", " a", "a ", "a\tb", "grüße", "a\r", "a\nb", "\u{7F}", "a\u{0}"])
    func validateRejectsBadNames(name: String) {
        var headers = NATSHeaders(["Good": "v"])
        headers.append(name, "value")
        expectInvalidHeader(headers, name: name)
    }

    @Test(arguments: ["a\rb", "a\nb", "\r\n", "trailing\r\n", "\n"])
    func validateRejectsValuesWithCRorLF(value: String) {
        var headers = NATSHeaders(["Good": "v"])
        headers.append("Bad", value)
        expectInvalidHeader(headers, name: "Bad")
    }

    func expectInvalidHeader(_ headers: NATSHeaders, name: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try headers.validate()
            Issue.record("\(headers) validated", sourceLocation: sourceLocation)
        } catch {
            guard error.code == .invalidHeader, let badName = error.value, let reason = error.reason else {
                Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
                return
            }
            #expect(badName == name, sourceLocation: sourceLocation)
            #expect(!reason.isEmpty, sourceLocation: sourceLocation)
        }
    }

    @Test func validHeadersSurviveTheWire() throws {
        // Whatever validate() accepts (with trimmed values) decodes back unchanged.
        var random = RandomFrames(seed: 0x4EAD)
        for _ in 0..<300 {
            let headers = random.headers()
            try headers.validate()
            var buffer = ByteBuffer()
            buffer.writeMessage(subject: "s", sid: 1, replyTo: nil, headers: headers, payload: [])
            let message = try #require(try onlyMessage(String(buffer: buffer)))
            #expect(message.headers == headers)
        }
    }
}
