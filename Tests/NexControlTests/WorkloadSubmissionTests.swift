import Foundation
import NATSTestSupport
import NATSWire
import Testing
@testable import NexControl

@Suite struct WorkloadSubmissionTests {
    static let hash = String(repeating: "ab", count: 32)

    // MARK: Arguments

    @Test func environmentPairs() throws {
        let environment = try WorkloadSubmission.parseEnvironment(["A=1", "URL=nats://h:4222?x=y", "EMPTY=", "A=2"])
        #expect(environment == ["A": "2", "URL": "nats://h:4222?x=y", "EMPTY": ""])
        for bad in ["NOEQUALS", "=value", "WITH SPACE=1"] {
            #expect(throws: WorkloadSubmissionError.invalidEnvironmentPair(bad)) {
                try WorkloadSubmission.parseEnvironment([bad])
            }
        }
    }

    @Test func argvValues() {
        #expect(WorkloadSubmission.arguments(fromOptionValues: []) == [])
        #expect(WorkloadSubmission.arguments(fromOptionValues: ["-p  8080 --verbose"]) == ["-p", "8080", "--verbose"])
        #expect(WorkloadSubmission.arguments(fromOptionValues: ["a b", "c"]) == ["a b", "c"])
    }

    @Test func namesAndKeysFromFiles() {
        #expect(WorkloadSubmission.workloadName(forFile: "/tmp/build/echo-service") == "echo-service")
        #expect(WorkloadSubmission.workloadName(forFile: "./my app.v2.wasm") == "my-app-v2-wasm")
        #expect(WorkloadClaims.isValidName(WorkloadSubmission.workloadName(forFile: String(repeating: "é", count: 100))))
        #expect(WorkloadSubmission.objectKey(forFile: "/tmp/echo.wasm") == "echowasm")
        #expect(WorkloadSubmission.objectKey(forFile: "relative/my.app.js") == "myappjs")
    }

    @Test func locations() throws {
        #expect(try ArtifactLocation("nats://NEXCLIFILES/echo") == .objectStore(bucket: "NEXCLIFILES", key: "echo"))
        #expect(try ArtifactLocation("nats://B/dir/echo") == .objectStore(bucket: "B", key: "dir/echo"))
        #expect(try ArtifactLocation("file:///opt/echo") == .file(path: "/opt/echo"))
        #expect(try ArtifactLocation("file:///opt/echo").url == "file:///opt/echo")
        #expect(ArtifactLocation.objectStore(bucket: "B", key: "my app%1?#").url == "nats://B/my%20app%251%3F%23")
        #expect(try ArtifactLocation("nats://B/my%20app%251%3F%23") == .objectStore(bucket: "B", key: "my app%1?#"))
        #expect(ArtifactLocation.file(path: "/opt/café").url == "file:///opt/caf%C3%A9")
        #expect(try ArtifactLocation("file:///opt/caf%C3%A9") == .file(path: "/opt/café"))
        for bad in ["nats://B/%zz", "nats://BUCKET", "nats:///key", "nats://B/", "file://relative", "file:///", "http://x/y", "echo"] {
            #expect(throws: WorkloadSubmissionError.self, "\(bad)") { try ArtifactLocation(bad) }
        }
    }

    @Test func platformOfELFExecutables() throws {
        let shell = try #require(WorkloadSubmission.platform(ofExecutable: "/bin/sh"))
        #expect(shell.os == "linux")
        #if arch(x86_64)
        #expect(shell.arch == "amd64")
        #elseif arch(arm64)
        #expect(shell.arch == "arm64")
        #endif
        let directory = try TemporaryDirectory()
        let script = try directory.write("#!/bin/sh\necho hi\n", to: "script")
        #expect(WorkloadSubmission.platform(ofExecutable: script) == nil)
        #expect(WorkloadSubmission.platform(ofExecutable: directory.appending("missing")) == nil)
    }

    // MARK: Digests

    @Test func sha256OfBytesAndFiles() throws {
        #expect(ArtifactDigest.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(ArtifactDigest.sha256Hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let directory = try TemporaryDirectory()
        // Larger than one read, not a multiple of it.
        let content = (0..<200_003).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let path = directory.appending("artifact")
        try Data(content).write(to: URL(fileURLWithPath: path))
        #expect(try ArtifactDigest.sha256Hex(ofFile: path) == ArtifactDigest.sha256Hex(content))
        #expect(throws: WorkloadSubmissionError.self) { try ArtifactDigest.sha256Hex(ofFile: directory.appending("missing")) }
    }

    @Test func objectDigestToHex() {
        // SHA-256("abc") as an object store records it: base64url, padded.
        let digest = "SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0="
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        #expect(ArtifactDigest.hex(fromObjectDigest: digest) == hex)
        #expect(ArtifactDigest.hex(fromObjectDigest: String(digest.dropLast())) == hex)
        #expect(ArtifactDigest.hex(fromObjectDigest: "SHA-256=AAAA") == nil)
        #expect(ArtifactDigest.hex(fromObjectDigest: "MD5=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=") == nil)
        #expect(ArtifactDigest.isSHA256Hex(hex.uppercased()))
        #expect(!ArtifactDigest.isSHA256Hex("xyz"))
    }

    // MARK: Submission

    @Test func submissionChecksItsOptions() throws {
        let location = ArtifactLocation.objectStore(bucket: "B", key: "k")
        #expect(throws: WorkloadClaimsError.self) {
            try WorkloadSubmission(name: "bad name", location: location, artifactHash: Self.hash)
        }
        #expect(throws: WorkloadSubmissionError.unknownType("oci")) {
            try WorkloadSubmission(name: "w", type: "OCI", location: location, artifactHash: Self.hash)
        }
        #expect(throws: WorkloadSubmissionError.self) {
            try WorkloadSubmission(name: "w", location: location, artifactHash: "abc12345TODOmakethisreal")
        }
        #expect(throws: WorkloadSubmissionError.self) {
            try WorkloadSubmission(name: "w", type: "native", location: location, artifactHash: Self.hash,
                                   triggerSubjects: ["jobs.>"])
        }
        #expect(throws: WorkloadSubmissionError.self) {
            try WorkloadSubmission(name: "w", type: "wasm", location: location, artifactHash: Self.hash, essential: true)
        }
        let function = try WorkloadSubmission(name: "w", type: "V8", location: location, artifactHash: Self.hash.uppercased(),
                                              argv: [], essential: false, triggerSubjects: ["jobs.>"])
        #expect(function.type == "v8")
        #expect(function.artifactHash == Self.hash)
        #expect(function.argv == nil && function.essential == nil)
    }

    @Test func deployRequestIsSignedAndSealed() throws {
        let issuer = try NKeyPair.generate(.account)
        let sender = try XKeyPair.generate()
        let nodeXKey = try XKeyPair.generate()
        let submission = try WorkloadSubmission(
            name: "echo", location: .file(path: "/opt/echo"), artifactHash: Self.hash,
            environment: ["NATS_URL": "nats://10.0.0.1:4222", "SECRET": "s3cr3t"], argv: ["-v"],
            description: "an echo", essential: true, jsDomain: "hub")
        let request = try submission.deployRequest(issuer: issuer, sender: sender, targetNode: "NNODE",
                                                   targetXKey: nodeXKey.publicKey)
        #expect(request.type == "native")
        #expect(request.location == "file:///opt/echo")
        #expect(request.targetNode == "NNODE")
        #expect(request.senderPublicKey == sender.publicKey)
        #expect(request.argv == ["-v"] && request.essential == true && request.description == "an echo")
        #expect(request.jsDomain == "hub")
        #expect(!request.environment.contains("s3cr3t"))
        let claims = try WorkloadClaims.verifyDeploy(request.workloadJWT, validIssuers: [issuer.publicKey])
        #expect(claims.name == "echo")
        #expect(claims.artifactHash == Self.hash)
        let environment = try EnvironmentSealing.open(request.environment, senderPublicKey: request.senderPublicKey,
                                                      recipient: nodeXKey)
        #expect(environment == submission.environment)
    }

    @Test func logLines() throws {
        let record = LogRecord(text: "hello\n", level: 2, id: "w1")
        let received = Date(timeIntervalSince1970: 1_720_000_000.25)
        let line = WorkloadLogLine(subject: "$NEX.logs.default.NNODE.echo.w1", record: record, received: received)
        #expect(line.namespace == "default" && line.nodeID == "NNODE" && line.workloadName == "echo" && line.workloadID == "w1")
        #expect(line.formatted == "2024-07-03T09:46:40.250Z NNODE echo: hello")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(line.json.utf8)) as? [String: Any])
        #expect(json["node_id"] as? String == "NNODE" && json["text"] as? String == "hello\n" && json["level"] as? Int == 2)

        let odd = WorkloadLogLine(subject: "$NEX.logs.system.NNODE.stdout", record: record, received: received)
        #expect(odd.workloadID == "w1" && odd.nodeID.isEmpty)
        #expect(odd.formatted.hasSuffix(" - w1: hello"))
    }
}

/// Choosing nodes from auction bids.
@Suite struct PlacementTests {
    static func bid(_ id: String, workloads: Int) -> PingResponse {
        PingResponse(nodeID: id, version: "1", uptime: "1s", targetXKey: "X", tags: nil, runningMachines: workloads)
    }

    @Test func distinctNodesWithTheFewestWorkloadsFirst() throws {
        let bids = [Self.bid("A", workloads: 5), Self.bid("B", workloads: 1), Self.bid("C", workloads: 3),
                    Self.bid("B", workloads: 1), Self.bid("D", workloads: 0)]
        for _ in 0..<20 {
            #expect(try Placement.choose(3, from: bids, asked: "x").map(\.nodeID) == ["D", "B", "C"])
        }
        #expect(try Placement.choose(4, from: bids, asked: "x").map(\.nodeID) == ["D", "B", "C", "A"])
    }

    @Test func tiesAreSpreadAtRandom() throws {
        let bids = (0..<4).map { Self.bid("N\($0)", workloads: 2) }
        let firsts = Set((0..<200).map { _ in try! Placement.choose(1, from: bids, asked: "x")[0].nodeID })
        #expect(firsts.count == 4)
    }

    @Test func tooFewBiddersIsAnErrorSayingHowMany() {
        let bids = [Self.bid("A", workloads: 0), Self.bid("A", workloads: 0)]
        #expect(throws: WorkloadSubmissionError.noNodeAvailable(reason: "only 1 node bid for a wasm workload (tags zone=a), and 2 are needed")) {
            try Placement.choose(2, from: bids, asked: AuctionRequest(tags: ["zone": "a"], workloadTypes: ["wasm"]).summary)
        }
        #expect(throws: WorkloadSubmissionError.noNodeAvailable(reason: "no node bid for a workload, and 1 is needed")) {
            try Placement.choose(1, from: [], asked: AuctionRequest().summary)
        }
    }

    @Test func goDurations() {
        #expect(GoDuration.parse("30s") == .seconds(30))
        #expect(GoDuration.parse("1m30s") == .seconds(90))
        #expect(GoDuration.parse("1.5s") == .milliseconds(1500))
        #expect(GoDuration.parse("500ms") == .milliseconds(500))
        #expect(GoDuration.parse("2h") == .seconds(7200))
        #expect(GoDuration.parse("0") == .zero)
        for bad in ["", "30", "s", "-1s", "1x", "1..2s", "1e3s", String(repeating: "1s", count: 40), "9300000000s",
                    "99999999999999999999h", "1000000001s"] {
            #expect(GoDuration.parse(bad) == nil, "\(bad)")
        }
        #expect(GoDuration.format(.milliseconds(1500)) == "1500ms")
        #expect(GoDuration.format(.seconds(30)) == "30s")
    }
}
