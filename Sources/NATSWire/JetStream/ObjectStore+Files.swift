import FoundationEssentials

extension ObjectStore {
    /// Stores the file at `path` as an object, reading and publishing one chunk at a time
    /// (the file is never held in memory whole).
    @discardableResult
    public func put(_ name: String, contentsOfFile path: String) async throws -> ObjectInfo {
        try await put(ObjectMeta(name: name), contentsOfFile: path)
    }

    /// Stores the file at `path` with metadata `meta`. See ``put(_:contentsOfFile:)-(String,_)``.
    @discardableResult
    public func put(_ meta: ObjectMeta, contentsOfFile path: String) async throws -> ObjectInfo {
        try Self.validateName(meta.name)
        let file = try ObjectFile.openForReading(path)
        return try await put(meta) { buffer throws(ObjectStoreError) in try file.fill(buffer) }
    }

    /// Writes an object to the file at `path`, chunk by chunk, checking its size and digest.
    ///
    /// The content goes to a temporary file beside `path` that replaces it only once complete and
    /// verified; on any failure (digest or size mismatch included) the partial file is removed and
    /// `path` is left as it was. An existing `path` must be a regular file (a device or a
    /// directory is refused, since it would be replaced).
    @discardableResult
    public func get(_ name: String, toFile path: String) async throws -> ObjectInfo {
        if FileManager.default.fileExists(atPath: path) {
            let type = try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType
            guard type == .typeRegular else {
                throw ObjectStoreError.fileError(path: path, operation: "replace", reason: "not a regular file")
            }
        }
        let info = try await info(name)
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let partial = "\(directory)/.\(url.lastPathComponent).\(NUID.next()).partial"
        let file = try ObjectFile.create(partial)
        do {
            try await readContent(of: info) { chunk throws(ObjectStoreError) in try file.writeAll(chunk) }
            try file.finish()
            try ObjectFile.move(partial, to: path)
        } catch {
            try? file.finish()
            ObjectFile.remove(partial)
            throw error
        }
        return info
    }
}
