import ArgumentParser
import Foundation
import NATSWire
import NexControl
import NIOCore

/// `nexctl devrun FILE [KEY=VALUE ...]`: the developer loop. Picks nodes by auction, uploads
/// the file to the `NEXCLIFILES` object store, stops the workloads of the same name, and
/// deploys the new ones, with keys kept in `$NEX_HOME` (default `~/.nex`).
struct DevRun: AsyncParsableCommand {
    static let bucket = "NEXCLIFILES"

    static let configuration = CommandConfiguration(
        commandName: "devrun",
        abstract: "Upload a local file and run it on nodes picked by auction.",
        discussion: """
            --replicas copies go to distinct nodes chosen by auction, the fewest workloads first; \
            workloads of the same name are stopped first on every node (--no-stop keeps them). \
            The file goes to the NEXCLIFILES object store (created if missing) under its name \
            without dots; the workload JWT is signed with issuer.nk and the environment sealed with \
            publisher.xk, both in $NEX_HOME (default ~/.nex) and created on first use.
            """,
        aliases: ["yeet"])
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The workload's file (executable, .wasm or .js).") var file: String
    @Argument(help: "Environment variables, KEY=VALUE.") var environment: [String] = []
    @Option(help: "Workload name (default: the file name, other characters than letters, digits, '-' and '_' made '-').")
    var name: String?
    @OptionGroup var workload: WorkloadOptions
    @Flag(name: .customLong("no-stop"), help: "Keep running workloads of the same name.")
    var noStop = false
    @Option(help: "Size limit of the NEXCLIFILES bucket when it is created, in bytes.")
    var bucketMaxBytes: Int64 = 100 * 1024 * 1024
    @OptionGroup var placement: PlacementOptions
    @Option(help: "Issuer seed file (default: issuer.nk in $NEX_HOME or ~/.nex).") var issuer: String?
    @Option(help: "Curve seed file (default: publisher.xk in $NEX_HOME or ~/.nex).") var xkey: String?

    func run() async throws {
        try await Nexctl.perform {
            let path = URL(fileURLWithPath: file).standardizedFileURL.path
            let hash = try ArtifactDigest.sha256Hex(ofFile: path)
            let key = WorkloadSubmission.objectKey(forFile: path)
            let name = self.name ?? WorkloadSubmission.workloadName(forFile: path)
            let submission = try workload.submission(
                name: name, location: .objectStore(bucket: Self.bucket, key: key), artifactHash: hash,
                environment: try WorkloadSubmission.parseEnvironment(self.environment))
            let issuer = try NexHome.issuer(seedFile: self.issuer)
            let sender = try NexHome.sender(xkeyFile: xkey)
            let nex = try await global.connect()

            let nodes = try await placement.chooseNodes(nex, type: submission.type, executable: path)
            try await upload(nex, path: path, key: key, expectedHash: hash)
            if !noStop { await stopPrevious(nex, name: name, issuer: issuer) }
            for node in nodes {
                let response = try await nex.deploy(submission, namespace: global.namespace, node: node,
                                                    issuer: issuer, sender: sender)
                print("node: \(node)")
                print("workload: \(response.id) (\(response.name))")
            }
            await nex.connection.close()
        }
    }

    private func upload(_ nex: NexClient, path: String, key: String, expectedHash: String) async throws {
        let js = try nex.connection.jetStream(domain: workload.jsDomain, timeout: max(global.wait, .seconds(5)))
        let store: ObjectStore
        do {
            store = try await js.objectStore(Self.bucket)
        } catch ObjectStoreError.bucketNotFound {
            store = try await js.createObjectStore(ObjectStoreConfig(
                bucket: Self.bucket, description: "nexctl devrun uploads", maxBytes: bucketMaxBytes))
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
        let existing = try? await store.info(key)
        if let digest = existing?.digest, ArtifactDigest.hex(fromObjectDigest: digest) == expectedHash {
            warn("\(Self.bucket)/\(key) is up to date")
            return
        }
        // A new version is stored before the old one is removed: make room when the bucket
        // could not hold both.
        if existing != nil, let status = try? await store.status(), status.config.maxBytes > 0,
           status.state.bytes + size > UInt64(status.config.maxBytes)
        {
            try await store.delete(key)
        }
        let progress = UploadProgress(label: "\(Self.bucket)/\(key)", total: size)
        let info = try await progress.track(store: store) {
            try await store.put(key, contentsOfFile: path)
        }
        guard let digest = info.digest, ArtifactDigest.hex(fromObjectDigest: digest) == expectedHash else {
            throw WorkloadSubmissionError.unknownArtifactDigest(
                location: "nats://\(Self.bucket)/\(key)", reason: "\(path) changed while it was uploaded; try again")
        }
    }

    /// Stops the workloads named `name` on every node (the copies the new one replaces); a
    /// refusal is reported and does not stop the deploy.
    private func stopPrevious(_ nex: NexClient, name: String, issuer: NKeyPair) async {
        let running: [RunningWorkload]
        do {
            running = try await nex.runningWorkloads(namespace: global.namespace, matching: name,
                                                     window: .milliseconds(Int64(placement.auctionWait * 1000)))
        } catch {
            warn("cannot look for running workloads named '\(name)': \(error)")
            return
        }
        for workload in running where workload.name == name {
            do {
                let response = try await nex.stopWorkload(namespace: global.namespace, node: workload.nodeID,
                                                          id: workload.id, name: name, issuer: issuer)
                warn(response.stopped ? "stopped previous workload \(workload.id)" : "node did not stop previous workload \(workload.id)")
            } catch {
                warn("cannot stop previous workload \(workload.id): \(error)")
            }
        }
    }
}

/// The upload's progress on stderr: a bar redrawn in place when stderr is a terminal, else one
/// line at the end. Progress is read from the bucket's stream size while the upload runs.
struct UploadProgress {
    var label: String
    var total: UInt64
    var interactive: Bool = isatty(STDERR_FILENO) == 1

    func track(store: ObjectStore, _ upload: () async throws -> ObjectInfo) async throws -> ObjectInfo {
        let started = ContinuousClock.now
        guard interactive, total > 0 else {
            let info = try await upload()
            finish(info: info, started: started)
            return info
        }
        let baseline = (try? await store.status().state.bytes) ?? 0
        let total = self.total
        let label = self.label
        let poller = Task {
            while !Task.isCancelled {
                if let bytes = try? await store.status().state.bytes {
                    Self.draw(label: label, done: min(total, bytes > baseline ? bytes - baseline : 0), total: total)
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        let info: ObjectInfo
        do {
            info = try await upload()
        } catch {
            poller.cancel()
            await poller.value
            FileHandle.standardError.write(Data("\n".utf8))
            throw error
        }
        poller.cancel()
        await poller.value
        Self.draw(label: label, done: total, total: total)
        FileHandle.standardError.write(Data("\n".utf8))
        finish(info: info, started: started)
        return info
    }

    private func finish(info: ObjectInfo, started: ContinuousClock.Instant) {
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        warn("uploaded \(label): \(Self.size(info.size)) in \(String(format: "%.1f", seconds)) s")
    }

    static func draw(label: String, done: UInt64, total: UInt64) {
        let width = 30
        let filled = total == 0 ? width : Int(Double(done) / Double(total) * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let percent = total == 0 ? 100 : Int(Double(done) / Double(total) * 100)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(percent)% \(size(done))/\(size(total))".utf8))
    }

    static func size(_ bytes: UInt64) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        if bytes < 1024 * 1024 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
        return String(format: "%.1f MiB", Double(bytes) / 1024 / 1024)
    }
}

/// One line on stderr.
func warn(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
