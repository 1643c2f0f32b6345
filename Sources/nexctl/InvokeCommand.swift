import ArgumentParser
import Foundation
import NATSWire
import NexControl

/// `nexctl invoke SUBJECT [PAYLOAD]`: one request to a subject (a function's trigger, or any
/// service), printing the reply; a function's failure (`Nex-Function-Error`) is the error.
struct Invoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a request to a subject (a function trigger) and print the reply.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The subject to send to.") var subject: String
    @Argument(help: "The request body (default: empty; '-' reads standard input).") var payload: String?
    @Option(name: .customLong("header"), help: "A request header, NAME=VALUE (repeatable).") var headers: [String] = []

    func run() async throws {
        try await Nexctl.perform {
            try NATSSubject.validatePublish(subject)
            let body: [UInt8]
            if payload == "-" {
                body = Array(FileHandle.standardInput.readDataToEndOfFile())
            } else {
                body = Array((payload ?? "").utf8)
            }
            var requestHeaders: NATSHeaders?
            for header in headers {
                guard let equals = header.firstIndex(of: "="), equals != header.startIndex else {
                    throw ValidationError("--header expects NAME=VALUE, got '\(header)'")
                }
                requestHeaders = requestHeaders ?? NATSHeaders()
                requestHeaders![String(header[..<equals])] = String(header[header.index(after: equals)...])
            }
            // The command's trace context travels with the request (unless --header set one).
            if let traced = NATSHeaders.tracing(), requestHeaders?["traceparent"] == nil {
                requestHeaders = requestHeaders ?? NATSHeaders()
                for field in traced.fields { requestHeaders![field.name] = field.value }
            }
            let nex = try await global.connect()
            defer { Task { await nex.connection.close() } }
            let reply = try await nex.connection.request(
                body, to: subject, headers: requestHeaders, timeout: global.wait)
            if let failure = reply.headers?[FunctionHeader.error] {
                throw InvokeFailure(subject: subject, message: failure)
            }
            FileHandle.standardOutput.write(Data(reply.payload.readableBytesView))
            if let last = reply.payload.readableBytesView.last, last != UInt8(ascii: "\n") {
                FileHandle.standardOutput.write(Data("\n".utf8))
            }
        }
    }
}

struct InvokeFailure: Error, CustomStringConvertible {
    var subject: String
    var message: String
    var description: String { "the function on \(subject) failed: \(message)" }
}
