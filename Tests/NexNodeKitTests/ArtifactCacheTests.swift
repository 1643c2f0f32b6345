import Foundation
import NATSTestSupport
import NATSWire
import NexControl
import Testing
@testable import NexNodeKit
import NexWorkloads

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ArtifactCacheTests {
    // MARK: file://

    @Test func fileArtifactIsCopiedVerifiedAndCached() async throws {
        let scratch = try TemporaryDirectory(prefix: "artifact-test-")
        let content = pseudoRandomBytes(3 * 1024 * 1024 + 17)
        let source = try writeFile(content, in: scratch, named: "echo")
        let hash = ArtifactDigest.sha256Hex(content)
        let cache = try ArtifactCache(stateDirectory: scratch.appending("state/nested"), fileRoots: try ArtifactFileRoots([scratch.path]))
        #expect(mode(of: cache.directory) == 0o700)

        let location = try ArtifactLocation(validating: "file://\(source)")
        let first = try await cache.fetch(location, expectedSHA256: hash.uppercased(), maxBytes: content.count, client: nil)
        #expect(first == CachedArtifact(path: "\(cache.directory)/\(hash)", sha256: hash, size: content.count, fromCache: false))
        #expect(try readFile(first.path) == content)
        #expect(try cacheEntries(cache) == [hash])

        // Gone from its location: the cache answers without looking there.
        unlink(source)
        let second = try await cache.fetch(location, expectedSHA256: hash, maxBytes: 0, client: nil)
        #expect(second.fromCache)
        #expect(second.path == first.path && second.size == content.count && second.sha256 == hash)
        #expect(cache.cached(sha256: hash.uppercased()) == second)
        #expect(cache.cached(sha256: String(repeating: "0", count: 64)) == nil)
    }

    @Test func hashMismatchIsRefusedAndLeavesNothing() async throws {
        let scratch = try TemporaryDirectory(prefix: "artifact-test-")
        let content = pseudoRandomBytes(100_000)
        let source = try writeFile(content, in: scratch, named: "app")
        let cache = try ArtifactCache(stateDirectory: scratch.appending("state"), fileRoots: try ArtifactFileRoots([scratch.path]))
        let claimed = ArtifactDigest.sha256Hex(Array("something else".utf8))
        let location = try ArtifactLocation(validating: "file://\(source)")

        let error = await #expect(throws: ArtifactError.self) {
            try await cache.fetch(location, expectedSHA256: claimed, maxBytes: 0, client: nil)
        }
        let actual = ArtifactDigest.sha256Hex(content)
        #expect(error == .hashMismatch(location: "file://\(source)", claimed: claimed, actual: actual))
        // The reply names the claim, never what the file is; the operator's log has both.
        #expect("\(error!)" == "artifact hash mismatch for file://\(source): it is not the artifact the workload JWT claims (\(claimed))")
        #expect(error!.operatorDetail == "artifact hash mismatch for file://\(source): the workload JWT claims \(claimed), the artifact is \(actual)")
        #expect(try cacheEntries(cache).isEmpty)
    }

    @Test func tooLargeFileIsRefusedBeforeReading() async throws {
        let scratch = try TemporaryDirectory(prefix: "artifact-test-")
        // A sparse 1 TiB file: reading it would take minutes, refusing it takes no time.
        let path = scratch.appending("huge")
        let descriptor = open(path, O_WRONLY | O_CREAT, 0o600)
        #expect(descriptor >= 0)
        #expect(ftruncate(descriptor, 1 << 40) == 0)
        close(descriptor)
        let cache = try ArtifactCache(stateDirectory: scratch.appending("state"), fileRoots: try ArtifactFileRoots([scratch.path]))
        let location = try ArtifactLocation(validating: "file://\(path)")
        let started = ContinuousClock.now
        let error = await #expect(throws: ArtifactError.self) {
            try await cache.fetch(location, expectedSHA256: String(repeating: "a", count: 64), maxBytes: 1000, client: nil)
        }
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(error == .tooLarge(location: "file://\(path)", size: 1 << 40, limit: 1000))
        #expect("\(error!)" == "artifact file://\(path) is larger than max_workload_bytes (1000)")
        #expect(error!.operatorDetail == "artifact file://\(path) is 1099511627776 bytes; max_workload_bytes is 1000")
        #expect(try cacheEntries(cache).isEmpty)
    }

    @Test func sizeLimitAlsoAppliesToCachedArtifacts() async throws {
        let scratch = try TemporaryDirectory(prefix: "artifact-test-")
        let content = pseudoRandomBytes(5000)
        let source = try writeFile(content, in: scratch, named: "app")
        let hash = ArtifactDigest.sha256Hex(content)
        let cache = try ArtifactCache(stateDirectory: scratch.appending("state"), fileRoots: try ArtifactFileRoots([scratch.path]))
        let location = try ArtifactLocation(validating: "file://\(source)")
        _ = try await cache.fetch(location, expectedSHA256: hash, maxBytes: 5000, client: nil)
        let error = await #expect(throws: ArtifactError.self) {
            try await cache.fetch(location, expectedSHA256: hash, maxBytes: 4999, client: nil)
        }
        #expect(error == .tooLarge(location: "file://\(source)", size: 5000, limit: 4999))
    }

    @Test func missingFilesDirectoriesAndBadHashesAreRefused() async throws {
        let scratch = try TemporaryDirectory(prefix: "artifact-test-")
        let cache = try ArtifactCache(stateDirectory: scratch.appending("state"), fileRoots: try ArtifactFileRoots([scratch.path]))
        let anyHash = String(repeating: "b", count: 64)

        let missing = try ArtifactLocation(validating: "file://\(scratch.path)/nope")
        let notFound = await #expect(throws: ArtifactError.self) {
            try await cache.fetch(missing, expectedSHA256: anyHash, maxBytes: 0, client: nil)
        }
        #expect("\(notFound!)" == "artifact not found: file://\(scratch.path)/nope")
        let underFile = try ArtifactLocation(validating: "file://\(try writeFile([1], in: scratch, named: "f"))/x")
        await #expect(throws: ArtifactError.notFound(location: underFile.url, reason: nil)) {
            try await cache.fetch(underFile, expectedSHA256: anyHash, maxBytes: 0, client: nil)
        }

        let subdirectory = try scratch.makeSubdirectory("dir")
        let directory = try ArtifactLocation(validating: "file://\(subdirectory)")
        await #expect(throws: ArtifactError.notARegularFile(location: directory.url, path: subdirectory)) {
            try await cache.fetch(directory, expectedSHA256: anyHash, maxBytes: 0, client: nil)
        }
        let fifoPath = scratch.appending("fifo")
        #expect(mkfifo(fifoPath, 0o600) == 0)
        let fifo = try ArtifactLocation(validating: "file://\(fifoPath)")
        await #expect(throws: ArtifactError.notARegularFile(location: fifo.url, path: fifoPath)) {
            try await cache.fetch(fifo, expectedSHA256: anyHash, maxBytes: 0, client: nil)
        }

        // The hash names a cache file: anything but 64 hex digits is refused before it is used.
        for bad in ["", "../../etc/passwd", String(repeating: "g", count: 64), String(repeating: "a", count: 63)] {
            await #expect(throws: ArtifactError.invalidHash(location: missing.url, hash: bad)) {
                try await cache.fetch(missing, expectedSHA256: bad, maxBytes: 0, client: nil)
            }
        }
        #expect(try cacheEntries(cache).isEmpty)
    }

    @Test func filesOutsideTheRootsAreRefusedAlikeWhetherTheyExistOrNot() async throws {
        let scratch = try TemporaryDirectory(prefix: "artifact-test-")
        let root = try scratch.makeSubdirectory("artifacts")
        let secret = try writeFile(Array("SXASECRETSEED".utf8), in: scratch, named: "node.xk")
        let secretHash = ArtifactDigest.sha256Hex(Array("SXASECRETSEED".utf8))
        let cache = try ArtifactCache(stateDirectory: scratch.appending("state"), fileRoots: try ArtifactFileRoots([root]))
        symlink(secret, root + "/link")
        // Links to a missing file, into a missing directory, and to a directory, all elsewhere:
        // none may tell whether its target exists.
        symlink(scratch.appending("missing"), root + "/dangling")
        symlink(scratch.appending("missing-dir"), root + "/dangling-dir")
        symlink(scratch.path, root + "/up")
        let outside = [secret, "/etc/passwd", "/dev/zero", "/nonexistent/file", root + "/../node.xk", root + "/./link/..",
                       root + "/link", root, root + "/dangling", root + "/dangling-dir/x", root + "/up/node.xk",
                       root + "/up/missing", root + "/up/missing-dir/x"]
        for path in outside {
            let location = try ArtifactLocation(validating: "file://\(path)")
            for hash in [secretHash, String(repeating: "c", count: 64)] {
                await #expect(throws: ArtifactError.fileOutsideRoots(location: location.url), "\(path)") {
                    try await cache.fetch(location, expectedSHA256: hash, maxBytes: 0, client: nil)
                }
            }
        }
        // A missing file inside the root is simply not found.
        let absent = try ArtifactLocation(validating: "file://\(root)/nothing/here")
        await #expect(throws: ArtifactError.notFound(location: absent.url, reason: nil)) {
            try await cache.fetch(absent, expectedSHA256: secretHash, maxBytes: 0, client: nil)
        }
        // No roots at all: file:// is off.
        let closed = try ArtifactCache(stateDirectory: scratch.appending("state2"))
        let inside = try writeFile([1, 2, 3], in: scratch, named: "artifacts/app")
        await #expect(throws: ArtifactError.fileOutsideRoots(location: "file://\(inside)")) {
            try await closed.fetch(try ArtifactLocation(validating: "file://\(inside)"),
                                   expectedSHA256: ArtifactDigest.sha256Hex([1, 2, 3]), maxBytes: 0, client: nil)
        }
        // Under the root it is read.
        let artifact = try await cache.fetch(try ArtifactLocation(validating: "file://\(inside)"),
                                             expectedSHA256: ArtifactDigest.sha256Hex([1, 2, 3]), maxBytes: 0, client: nil)
        #expect(artifact.size == 3)
        #expect(try cacheEntries(cache) == [ArtifactDigest.sha256Hex([1, 2, 3])])
    }

    @Test func rootsMustBeAbsoluteExistingDirectories() throws {
        let scratch = try TemporaryDirectory(prefix: "artifact-test-")
        let file = try writeFile([1], in: scratch, named: "f")
        for bad in ["relative/dir", scratch.appending("missing"), file] {
            #expect(throws: NodeConfigurationError.self, "\(bad)") { try ArtifactFileRoots([bad]) }
        }
        let roots = try ArtifactFileRoots([scratch.path + "/"])
        #expect(roots.root(holding: scratch.appending("state")) == nil)
        try FileManager.default.createDirectory(atPath: scratch.appending("state"), withIntermediateDirectories: true)
        #expect(roots.root(holding: scratch.appending("state")) != nil)
        // And the other way round: a root inside the state directory.
        let inner = try ArtifactFileRoots([try scratch.makeSubdirectory("state/agents")])
        #expect(inner.root(inside: scratch.appending("state")) != nil)
        #expect(inner.root(inside: scratch.appending("state/agents")) == nil)
    }

    @Test func concurrentFetchesOfOneArtifactAgree() async throws {
        let scratch = try TemporaryDirectory(prefix: "artifact-test-")
        let content = pseudoRandomBytes(2 * 1024 * 1024)
        let source = try writeFile(content, in: scratch, named: "app")
        let hash = ArtifactDigest.sha256Hex(content)
        let cache = try ArtifactCache(stateDirectory: scratch.appending("state"), fileRoots: try ArtifactFileRoots([scratch.path]))
        let location = try ArtifactLocation(validating: "file://\(source)")
        let results = try await withThrowingTaskGroup(of: CachedArtifact.self) { group in
            for _ in 0..<8 {
                group.addTask { try await cache.fetch(location, expectedSHA256: hash, maxBytes: 0, client: nil) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 8)
        #expect(Set(results.map(\.path)) == ["\(cache.directory)/\(hash)"])
        #expect(try cacheEntries(cache) == [hash])
        #expect(try readFile("\(cache.directory)/\(hash)") == content)
    }

    // MARK: place

    @Test func placeGivesTheAgentItsOwnExecutableCopy() async throws {
        let scratch = try TemporaryDirectory(prefix: "artifact-test-")
        let content = pseudoRandomBytes(1_500_000)
        let source = try writeFile(content, in: scratch, named: "app")
        let hash = ArtifactDigest.sha256Hex(content)
        let cache = try ArtifactCache(stateDirectory: scratch.appending("state"), fileRoots: try ArtifactFileRoots([scratch.path]))
        let artifact = try await cache.fetch(
            try ArtifactLocation(validating: "file://\(source)"), expectedSHA256: hash, maxBytes: 0, client: nil)
        let agentDirectory = scratch.appending("agent-1")
        #expect(mkdir(agentDirectory, 0o700) == 0)

        let placed = try cache.place(artifact, in: agentDirectory, named: "workload")
        #expect(placed == "\(agentDirectory)/workload")
        // Readable and executable by a sandboxed agent's own uid; the directory keeps it private.
        #expect(mode(of: placed) == 0o755)
        #expect(try readFile(placed) == content)
        #expect(inode(of: placed) != inode(of: artifact.path))

        // The workload writing its copy does not reach the cache.
        let descriptor = open(placed, O_WRONLY | O_TRUNC)
        #expect(descriptor >= 0)
        close(descriptor)
        #expect(try readFile(artifact.path) == content)

        // Placing again replaces the file; a symbolic link there is replaced, not written through.
        let victim = try writeFile([7, 7, 7], in: scratch, named: "victim")
        unlink(placed)
        #expect(symlink(victim, placed) == 0)
        _ = try cache.place(artifact, in: agentDirectory, named: "workload")
        #expect(try readFile(placed) == content)
        #expect(try readFile(victim) == [7, 7, 7])
        #expect(try FileManager.default.contentsOfDirectory(atPath: agentDirectory) == ["workload"])

        for bad in ["", ".", "..", "a/b", "../escape", String(repeating: "n", count: 256)] {
            #expect(throws: ArtifactError.self) { try cache.place(artifact, in: agentDirectory, named: bad) }
        }
        let empty = try await cache.fetch(
            try ArtifactLocation(validating: "file://\(try writeFile([], in: scratch, named: "empty"))"),
            expectedSHA256: ArtifactDigest.sha256Hex([UInt8]()), maxBytes: 0, client: nil)
        #expect(try readFile(try cache.place(empty, in: agentDirectory, named: "empty")) == [])
    }

    @Test func removeAllKeepsOnlyWhatIsInUse() async throws {
        let scratch = try TemporaryDirectory(prefix: "artifact-test-")
        let cache = try ArtifactCache(stateDirectory: scratch.appending("state"), fileRoots: try ArtifactFileRoots([scratch.path]))
        var hashes: [String] = []
        for index in 0..<3 {
            let content = pseudoRandomBytes(1000, seed: UInt64(index + 1))
            let source = try writeFile(content, in: scratch, named: "a\(index)")
            let hash = ArtifactDigest.sha256Hex(content)
            hashes.append(hash)
            _ = try await cache.fetch(try ArtifactLocation(validating: "file://\(source)"), expectedSHA256: hash, maxBytes: 0, client: nil)
        }
        _ = try writeFile([1], in: scratch, named: "state/artifacts/.fetch-left-over")
        _ = try writeFile([1], in: scratch, named: "state/artifacts/README")
        #expect(try cache.removeAll(except: [hashes[1].uppercased()]) == 3)
        #expect(Set(try cacheEntries(cache)) == [hashes[1], "README"])
    }

    // MARK: nats://

    @Test func objectStoreArtifactIsFetchedOnceThenServedFromTheCache() async throws {
        try await withObjectStore { server, client, js in
            let store = try await js.createObjectStore(ObjectStoreConfig(bucket: "ARTIFACTS"))
            let content = pseudoRandomBytes(1_000_000)
            try await store.put("apps/echo v1", data: content)
            let hash = ArtifactDigest.sha256Hex(content)
            let scratch = try TemporaryDirectory(prefix: "artifact-test-")
            let cache = try ArtifactCache(stateDirectory: scratch.path)
            let location = try ArtifactLocation(validating: "nats://ARTIFACTS/apps/echo%20v1")

            let first = try await cache.fetch(location, expectedSHA256: hash, maxBytes: content.count, client: client)
            #expect(!first.fromCache && first.size == content.count && first.sha256 == hash)
            #expect(try readFile(first.path) == content)
            #expect(try cacheEntries(cache) == [hash])

            // Neither the object nor the server is needed any more.
            try await store.delete("apps/echo v1")
            server.stop()
            let second = try await cache.fetch(location, expectedSHA256: hash, maxBytes: 0, client: client)
            #expect(second.fromCache && second.path == first.path)
        }
    }

    @Test func missingBucketsAndObjectsAreNotFound() async throws {
        try await withObjectStore { _, client, js in
            let store = try await js.createObjectStore(ObjectStoreConfig(bucket: "HAVE"))
            try await store.put("present", data: [1, 2, 3])
            let scratch = try TemporaryDirectory(prefix: "artifact-test-")
            let cache = try ArtifactCache(stateDirectory: scratch.path)
            let anyHash = String(repeating: "c", count: 64)

            let noBucket = try ArtifactLocation(validating: "nats://MISSING/app")
            let bucketError = await #expect(throws: ArtifactError.self) {
                try await cache.fetch(noBucket, expectedSHA256: anyHash, maxBytes: 0, client: client)
            }
            #expect(bucketError == .notFound(location: "nats://MISSING/app", reason: "no object store bucket 'MISSING'"))
            #expect("\(bucketError!)" == "artifact not found: nats://MISSING/app (no object store bucket 'MISSING')")

            let noObject = try ArtifactLocation(validating: "nats://HAVE/absent")
            let objectError = await #expect(throws: ArtifactError.self) {
                try await cache.fetch(noObject, expectedSHA256: anyHash, maxBytes: 0, client: client)
            }
            #expect("\(objectError!)" == "artifact not found: nats://HAVE/absent (no object 'absent' in bucket 'HAVE')")

            await #expect(throws: ArtifactError.fetchFailed(location: "nats://HAVE/present", reason: "the node has no NATS connection to fetch it on")) {
                try await cache.fetch(try ArtifactLocation(validating: "nats://HAVE/present"), expectedSHA256: anyHash, maxBytes: 0, client: nil)
            }
            #expect(try cacheEntries(cache).isEmpty)
        }
    }

    @Test func objectSizeIsCheckedFromItsInfoAndItsHashAfterDownload() async throws {
        try await withObjectStore { _, client, js in
            let store = try await js.createObjectStore(ObjectStoreConfig(bucket: "SIZES"))
            let content = pseudoRandomBytes(200_000)
            try await store.put("big", data: content)
            let scratch = try TemporaryDirectory(prefix: "artifact-test-")
            let cache = try ArtifactCache(stateDirectory: scratch.path)
            let location = try ArtifactLocation(validating: "nats://SIZES/big")
            let hash = ArtifactDigest.sha256Hex(content)

            await #expect(throws: ArtifactError.tooLarge(location: "nats://SIZES/big", size: 200_000, limit: 199_999)) {
                try await cache.fetch(location, expectedSHA256: hash, maxBytes: 199_999, client: client)
            }
            let wrong = ArtifactDigest.sha256Hex(Array(content.dropLast()))
            await #expect(throws: ArtifactError.hashMismatch(location: "nats://SIZES/big", claimed: wrong, actual: hash)) {
                try await cache.fetch(location, expectedSHA256: wrong, maxBytes: 0, client: client)
            }
            #expect(try cacheEntries(cache).isEmpty)
        }
    }

    @Test func jetStreamDomainIsUsed() async throws {
        try await withObjectStore(config: "jetstream { domain: hub }", domain: "hub") { _, client, js in
            let store = try await js.createObjectStore(ObjectStoreConfig(bucket: "DOMAIN"))
            let content = pseudoRandomBytes(300_000)
            try await store.put("app", data: content)
            let hash = ArtifactDigest.sha256Hex(content)
            let scratch = try TemporaryDirectory(prefix: "artifact-test-")
            let cache = try ArtifactCache(stateDirectory: scratch.path)
            let location = try ArtifactLocation(validating: "nats://DOMAIN/app")

            let elsewhere = await #expect(throws: ArtifactError.self) {
                try await cache.fetch(location, expectedSHA256: hash, maxBytes: 0, jetStreamDomain: "elsewhere", client: client)
            }
            guard case let .fetchFailed(failedLocation, reason) = elsewhere else {
                Issue.record("expected fetchFailed, got \(String(describing: elsewhere))")
                return
            }
            #expect(failedLocation == "nats://DOMAIN/app")
            #expect(reason.contains("$JS.elsewhere.API"), "\(reason)")

            let fetched = try await cache.fetch(location, expectedSHA256: hash, maxBytes: 0, jetStreamDomain: "hub", client: client)
            #expect(try readFile(fetched.path) == content)
        }
    }
}

// MARK: - Helpers

/// Starts a JetStream server and a client, runs `body` within 60 seconds, then closes the client.
private func withObjectStore(
    config: String? = nil, domain: String? = nil,
    _ body: @escaping @Sendable (NATSServer, NATSClient, JetStreamContext) async throws -> Void
) async throws {
    try await withNATSServer(config: config, jetStream: true) { server in
        var options = NATSClientOptions(servers: [server.url])
        options.reconnectWait = .milliseconds(50)
        options.maxReconnectWait = .milliseconds(200)
        let client = try NATSClient(options: options)
        try await client.connect()
        let js = try client.jetStream(domain: domain)
        do {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await body(server, client, js)
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(60))
                    return false
                }
                let finished = try await group.next()!
                group.cancelAll()
                if !finished { Issue.record("the test did not finish within 60 seconds") }
            }
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }
}

private func writeFile(_ bytes: [UInt8], in directory: TemporaryDirectory, named name: String) throws -> String {
    let path = directory.appending(name)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

private func readFile(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// The names in the cache directory, sorted.
private func cacheEntries(_ cache: ArtifactCache) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: cache.directory).sorted()
}

private func mode(of path: String) -> mode_t {
    var info = stat()
    guard lstat(path, &info) == 0 else { return 0 }
    return info.st_mode & 0o7777
}

private func inode(of path: String) -> ino_t {
    var info = stat()
    guard lstat(path, &info) == 0 else { return 0 }
    return info.st_ino
}
