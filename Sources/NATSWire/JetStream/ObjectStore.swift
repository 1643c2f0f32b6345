import FoundationEssentials
import NIOCore

/// An object store bucket: stream `OBJ_<bucket>`, each object's content in chunk messages on
/// `$O.<bucket>.C.<nuid>` and its metadata (``ObjectInfo``) on `$O.<bucket>.M.<name>` with the
/// name in padded base64url. Compatible with nats.go, nats-py and the `nats` CLI.
///
/// ```swift
/// let store = try await js.createObjectStore(ObjectStoreConfig(bucket: "artifacts"))
/// try await store.put("app.wasm", contentsOfFile: "/tmp/app.wasm")    // streamed in 128 KiB chunks
/// let info = try await store.get("app.wasm", toFile: "/var/cache/app.wasm")  // streamed, digest checked
/// ```
///
/// Reads check the size and SHA-256 digest of the content against the metadata; a mismatch is
/// ``ObjectStoreError/digestMismatch(bucket:name:expected:actual:)`` (or ``ObjectStoreError/sizeMismatch(bucket:name:expected:actual:)``)
/// and nothing partial is kept.
public struct ObjectStore: Sendable {
    /// The default chunk size, 128 KiB (nats.go's and nats-py's).
    public static let defaultChunkSize = 128 * 1024
    /// Bytes of chunks requested per batch when reading; two batches at most are in flight.
    static let readAheadBytes = 4 * 1024 * 1024

    /// The bucket name.
    public let bucket: String
    /// The stream holding it, `OBJ_<bucket>`.
    public let streamName: String
    let js: JetStreamContext
    let allowsDirect: Bool

    init(js: JetStreamContext, bucket: String, allowsDirect: Bool) {
        self.js = js
        self.bucket = bucket
        self.streamName = Self.streamName(bucket)
        self.allowsDirect = allowsDirect
    }

    static func streamName(_ bucket: String) -> String { "OBJ_\(bucket)" }

    func chunkSubject(_ nuid: String) -> String { "$O.\(bucket).C.\(nuid)" }

    /// `$O.<bucket>.M.<base64url(name), padded>`.
    func metaSubject(_ name: String) -> String { "$O.\(bucket).M.\(Self.paddedBase64URL(Array(name.utf8)))" }

    // MARK: Metadata

    /// The metadata of an object. Throws ``ObjectStoreError/objectNotFound(bucket:name:)`` when
    /// there is none, or it was deleted (unless `showDeleted`).
    public func info(_ name: String, showDeleted: Bool = false) async throws -> ObjectInfo {
        try Self.validateName(name)
        let selector = StoredMessage.Selector.lastBySubject(metaSubject(name))
        let message: StoredMessage
        do {
            message = try await js.readMessage(stream: streamName, selector, preferDirect: allowsDirect)
        } catch let error as JetStreamError where error.isNotFound {
            if error.errCode == JetStreamError.streamNotFound { throw ObjectStoreError.bucketNotFound(bucket) }
            throw ObjectStoreError.objectNotFound(bucket: bucket, name: name)
        }
        var info: ObjectInfo
        do {
            info = try JetStreamJSON.decode(ObjectInfo.self, from: message.payload)
        } catch {
            throw ObjectStoreError.badMetadata(bucket: bucket, name: name, reason: "not object metadata: \(error)")
        }
        info.modified = message.time
        if info.deleted && !showDeleted { throw ObjectStoreError.objectNotFound(bucket: bucket, name: name) }
        return info
    }

    /// The metadata of every object, in the order they were last written; deleted ones only with `showDeleted`.
    public func list(showDeleted: Bool = false) async throws -> [ObjectInfo] {
        let consumer: OrderedConsumer
        do {
            consumer = try await js.orderedConsumer(
                stream: streamName, filterSubject: "$O.\(bucket).M.>", deliverPolicy: .lastPerSubject)
        } catch let error as JetStreamError where error.errCode == JetStreamError.streamNotFound {
            throw ObjectStoreError.bucketNotFound(bucket)
        }
        var objects: [ObjectInfo] = []
        do {
            if consumer.initialPending > 0 {
                for try await message in consumer {
                    if var info = try? JetStreamJSON.decode(ObjectInfo.self, from: message.payload) {
                        info.modified = message.timestamp
                        if showDeleted || !info.deleted { objects.append(info) }
                    }
                    if message.pending == 0 { break }
                }
            }
        } catch {
            await consumer.stop()
            throw error
        }
        await consumer.stop()
        return objects
    }

    /// The bucket's stream: its configuration and counters.
    public func status() async throws -> StreamInfo {
        do {
            return try await js.streamInfo(streamName)
        } catch let error as JetStreamError where error.errCode == JetStreamError.streamNotFound {
            throw ObjectStoreError.bucketNotFound(bucket)
        }
    }

    // MARK: Writing

    /// Stores `data` as object `name`, replacing any object of that name.
    @discardableResult
    public func put(_ name: String, data: [UInt8]) async throws -> ObjectInfo {
        try await put(ObjectMeta(name: name), data: data)
    }

    /// Stores `data` with metadata `meta`, replacing any object of that name.
    @discardableResult
    public func put(_ meta: ObjectMeta, data: [UInt8]) async throws -> ObjectInfo {
        var offset = 0
        return try await put(meta) { buffer throws(ObjectStoreError) in
            let count = Swift.min(buffer.count, data.count - offset)
            data.withUnsafeBytes { bytes in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]))
            }
            offset += count
            return count
        }
    }

    /// Stores the readable bytes of `data`. See ``put(_:data:)-(ObjectMeta,[UInt8])``.
    @discardableResult
    public func put(_ meta: ObjectMeta, data: ByteBuffer) async throws -> ObjectInfo {
        var remaining = data
        return try await put(meta) { buffer throws(ObjectStoreError) in
            let count = Swift.min(buffer.count, remaining.readableBytes)
            remaining.withUnsafeReadableBytes { bytes in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
            }
            remaining.moveReaderIndex(forwardBy: count)
            return count
        }
    }

    /// Stores what `read` produces: it fills the buffer it is given and returns the byte count,
    /// 0 at the end. Chunks are published as they are read, with up to 32 acknowledgements in
    /// flight; on failure the chunks already stored are purged.
    func put(_ meta: ObjectMeta, read: (UnsafeMutableRawBufferPointer) throws(ObjectStoreError) -> Int) async throws -> ObjectInfo {
        try Self.validateName(meta.name)
        let chunkSize = meta.chunkSize ?? Self.defaultChunkSize
        let maxPayload = js.client.serverInfo?.maxPayload ?? 1_048_576
        guard chunkSize > 0, chunkSize <= maxPayload else {
            throw ObjectStoreError.invalidConfiguration(
                bucket: bucket, reason: "chunk size \(chunkSize) must be 1 to the server's max payload \(maxPayload)")
        }
        let previous: ObjectInfo?
        do {
            previous = try await info(meta.name, showDeleted: true)
        } catch ObjectStoreError.objectNotFound {
            previous = nil
        }

        let nuid = NUID.next()
        let chunkSubject = chunkSubject(nuid)
        let hasher = SHA256Hasher()
        var size: UInt64 = 0
        var chunks = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var pipeline = try await PublishPipeline(js: js)
        do {
            while true {
                let count = try read(buffer)
                if count == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                hasher.update(chunk)
                try await pipeline.publish(chunk, to: chunkSubject)
                size += UInt64(count)
                chunks += 1
            }
            try await pipeline.finish()
        } catch {
            _ = try? await js.purgeStream(streamName, subject: chunkSubject)
            throw mapNotAvailable(error)
        }

        var meta = meta
        meta.chunkSize = chunkSize
        let info = ObjectInfo(
            meta: meta, bucket: bucket, nuid: nuid, size: size, chunks: chunks,
            digest: Self.digestPrefix + Self.paddedBase64URL(hasher.finalize()), modified: Date())
        do {
            try await publishMeta(info)
        } catch {
            _ = try? await js.purgeStream(streamName, subject: chunkSubject)
            throw error
        }
        if let previous, !previous.nuid.isEmpty, previous.nuid != nuid, !previous.deleted {
            try await js.purgeStream(streamName, subject: self.chunkSubject(previous.nuid))
        }
        return info
    }

    /// Deletes an object: its metadata becomes a deleted marker and its chunks are purged.
    public func delete(_ name: String) async throws {
        var info = try await info(name)
        let chunks = chunkSubject(info.nuid)
        info.deleted = true
        info.size = 0
        info.chunks = 0
        info.digest = nil
        info.modified = Date()
        try await publishMeta(info)
        if !info.nuid.isEmpty { try await js.purgeStream(streamName, subject: chunks) }
    }

    /// Publishes metadata with `Nats-Rollup: sub`, so only the latest stays on the subject.
    private func publishMeta(_ info: ObjectInfo) async throws {
        let payload = try JetStreamJSON.encode(info)
        do {
            try await js.publish(payload, to: metaSubject(info.name), headers: ["Nats-Rollup": "sub"])
        } catch {
            throw mapNotAvailable(error)
        }
    }

    private func mapNotAvailable(_ error: any Error) -> any Error {
        if let error = error as? JetStreamError, error.kind == .notAvailable { return ObjectStoreError.bucketNotFound(bucket) }
        return error
    }

    // MARK: Reading

    /// The content of an object with its metadata; size and digest checked.
    public func get(_ name: String) async throws -> (info: ObjectInfo, data: [UInt8]) {
        let info = try await info(name)
        var data: [UInt8] = []
        data.reserveCapacity(Int(clamping: Swift.min(info.size, 1 << 28)))
        try await readContent(of: info) { chunk throws(ObjectStoreError) in
            data.append(contentsOf: chunk)
        }
        return (info, data)
    }

    /// Streams the chunks of `info` to `body` in order, checking the total size as it goes and the
    /// SHA-256 digest at the end. Chunks come through a ``PullReader``, so at most two batches of
    /// about ``readAheadBytes`` each are in memory.
    func readContent(of info: ObjectInfo, _ body: (UnsafeRawBufferPointer) throws(ObjectStoreError) -> Void) async throws {
        if info.isLink { throw ObjectStoreError.linkNotSupported(bucket: bucket, name: info.name) }
        let expected: [UInt8]?
        if let digest = info.digest {
            guard let decoded = Self.decodeDigest(digest) else {
                throw ObjectStoreError.badMetadata(bucket: bucket, name: info.name, reason: "unknown digest '\(digest)'")
            }
            expected = decoded
        } else if info.size > 0 {
            throw ObjectStoreError.badMetadata(bucket: bucket, name: info.name, reason: "no digest")
        } else {
            expected = nil
        }
        let hasher = SHA256Hasher()
        var received: UInt64 = 0
        if info.size > 0 || info.chunks > 0 {
            guard !info.nuid.isEmpty else {
                throw ObjectStoreError.badMetadata(bucket: bucket, name: info.name, reason: "no nuid")
            }
            let chunkSize = Swift.max(1, info.chunkSize ?? Self.defaultChunkSize)
            var reader = try await PullReader(
                js: js, stream: streamName, filterSubject: chunkSubject(info.nuid),
                batch: Swift.max(1, Self.readAheadBytes / chunkSize))
            do {
                while let message = try await reader.next() {
                    received += UInt64(message.payload.readableBytes)
                    if received > info.size {
                        throw ObjectStoreError.sizeMismatch(bucket: bucket, name: info.name, expected: info.size, actual: received)
                    }
                    try message.payload.withUnsafeReadableBytes { bytes throws(ObjectStoreError) in
                        hasher.update(bytes)
                        try body(bytes)
                    }
                }
            } catch {
                await reader.close()
                throw error
            }
            await reader.close()
        }
        guard received == info.size else {
            throw ObjectStoreError.sizeMismatch(bucket: bucket, name: info.name, expected: info.size, actual: received)
        }
        let actual = hasher.finalize()
        if let expected, actual != expected {
            throw ObjectStoreError.digestMismatch(
                bucket: bucket, name: info.name, expected: info.digest ?? "",
                actual: Self.digestPrefix + Self.paddedBase64URL(actual))
        }
    }

    // MARK: Names and encodings

    static let digestPrefix = "SHA-256="

    /// Bucket names: letters, digits, `-` and `_`.
    static func validateBucket(_ bucket: String) throws(ObjectStoreError) {
        do {
            try KeyValue.validateBucket(bucket)
        } catch {
            throw .invalidBucketName(bucket)
        }
    }

    static func validateName(_ name: String) throws(ObjectStoreError) {
        guard !name.isEmpty else { throw .invalidObjectName(name) }
    }

    /// Go's `base64.URLEncoding`: the URL alphabet, with `=` padding.
    static func paddedBase64URL(_ bytes: [UInt8]) -> String {
        String(Data(bytes).base64EncodedString().map { character -> Character in
            switch character {
            case "+": "-"
            case "/": "_"
            default: character
            }
        })
    }

    /// `SHA-256=<base64url>` (any case of the prefix, padded or not) to the 32 digest bytes.
    static func decodeDigest(_ digest: String) -> [UInt8]? {
        guard digest.count > digestPrefix.count,
              digest.prefix(digestPrefix.count).uppercased() == digestPrefix
        else { return nil }
        var encoded = digest.dropFirst(digestPrefix.count)
        while encoded.hasSuffix("=") { encoded = encoded.dropLast() }
        guard let bytes = Base64URL.decode(encoded), bytes.count == 32 else { return nil }
        return bytes
    }
}
