/// Prepares a wasm binary for instances that serve many calls (``WasmWarmInstance``): every
/// mutable global and every table the module defines is also exported, under a name of its own,
/// so the host can read their state after instantiation and put it back after each call.
///
/// Only the export section changes; the module behaves exactly as before. Returns nil when an
/// instance could keep state the host cannot put back — a table that may grow, passive data
/// or element segments (which `data.drop`/`elem.drop` consume), a start function (which runs
/// at instantiation) — or when the binary is not one this reader follows: the module then runs
/// in a fresh instance per call.
enum WasmResetExports {
    /// What the rewrite exported.
    struct Plan: Sendable {
        /// The export names of the mutable globals.
        var globals: [String]
        /// The export names of the tables, each with its (fixed) number of elements.
        var tables: [(name: String, count: Int)]
    }

    /// The export name given to global `index` (indices count imported globals first).
    static func globalExportName(_ index: Int) -> String { "nex:reset:global:\(index)" }
    /// The export name given to table `index`.
    static func tableExportName(_ index: Int) -> String { "nex:reset:table:\(index)" }

    /// The rewritten binary and what it exports for resetting, or nil (see above).
    static func prepare(_ bytes: [UInt8]) -> (bytes: [UInt8], plan: Plan)? {
        guard bytes.count >= 8, bytes.starts(with: [0x00, 0x61, 0x73, 0x6D]) else { return nil }
        // Each section: where it starts (its id byte) and its payload.
        var sections: [(id: UInt8, start: Int, range: Range<Int>)] = []
        var reader = Reader(bytes: bytes, position: 8)
        while !reader.atEnd {
            let start = reader.position
            guard let id = reader.byte(), let size = reader.unsigned(), reader.position + size <= bytes.count else { return nil }
            sections.append((id, start, reader.position..<reader.position + size))
            reader.position += size
        }
        // A start function runs at instantiation: it must run for every call, in a fresh instance.
        guard !sections.contains(where: { $0.id == 8 }) else { return nil }
        // Passive data segments exist only with a data count section (memory.init, data.drop).
        guard !sections.contains(where: { $0.id == 12 }) else { return nil }
        if let section = sections.first(where: { $0.id == 9 }) {
            guard hasOnlyActiveElements(bytes, section.range) else { return nil }
        }
        var imported = (globals: 0, tables: 0)
        if let section = sections.first(where: { $0.id == 2 }) {
            guard let counts = countImports(bytes, section.range) else { return nil }
            imported = counts
        }
        var mutable: [Int] = []
        if let section = sections.first(where: { $0.id == 6 }) {
            guard let defined = mutableGlobals(bytes, section.range) else { return nil }
            mutable = defined.map { imported.globals + $0 }
        }
        var tables: [(index: Int, count: Int)] = []
        if let section = sections.first(where: { $0.id == 4 }) {
            guard let sizes = fixedTableSizes(bytes, section.range) else { return nil }
            tables = sizes.enumerated().map { (imported.tables + $0.offset, $0.element) }
        }
        guard imported.tables == 0 else { return nil }
        guard let exports = sections.first(where: { $0.id == 7 }) else { return nil }

        var body = Reader(bytes: bytes, position: exports.range.lowerBound)
        guard let count = body.unsigned() else { return nil }
        let added: [(name: String, kind: UInt8, index: Int)] =
            mutable.map { (globalExportName($0), 0x03, $0) } + tables.map { (tableExportName($0.index), 0x01, $0.index) }
        var payload = leb(count + added.count)
        payload += bytes[body.position..<exports.range.upperBound]
        for entry in added {
            let utf8 = Array(entry.name.utf8)
            payload += leb(utf8.count) + utf8 + [entry.kind] + leb(entry.index)
        }
        var rewritten = Array(bytes[0..<exports.start])
        rewritten += [0x07] + leb(payload.count) + payload
        rewritten += bytes[exports.range.upperBound...]
        return (rewritten, Plan(globals: mutable.map(globalExportName),
                                tables: tables.map { (tableExportName($0.index), $0.count) }))
    }

    private static func countImports(_ bytes: [UInt8], _ range: Range<Int>) -> (globals: Int, tables: Int)? {
        var reader = Reader(bytes: bytes, position: range.lowerBound)
        guard let count = reader.unsigned() else { return nil }
        var counts = (globals: 0, tables: 0)
        for _ in 0..<count {
            guard reader.skipName(), reader.skipName(), let kind = reader.byte() else { return nil }
            switch kind {
            case 0x00: guard reader.unsigned() != nil else { return nil }  // function: type index
            case 0x01: guard reader.byte() != nil, reader.limits() != nil else { return nil }; counts.tables += 1
            case 0x02: guard reader.limits() != nil else { return nil }  // memory
            case 0x03: guard reader.byte() != nil, reader.byte() != nil else { return nil }; counts.globals += 1
            case 0x04: guard reader.byte() != nil, reader.unsigned() != nil else { return nil }  // tag
            default: return nil
            }
        }
        return counts
    }

    /// The size of each table, or nil when one may grow (no maximum, or a maximum above its
    /// minimum) or has a form this reader does not follow.
    private static func fixedTableSizes(_ bytes: [UInt8], _ range: Range<Int>) -> [Int]? {
        var reader = Reader(bytes: bytes, position: range.lowerBound)
        guard let count = reader.unsigned() else { return nil }
        var sizes: [Int] = []
        for _ in 0..<count {
            guard let type = reader.byte(), type != 0x40, let (minimum, maximum) = reader.limits(),
                  maximum == minimum else { return nil }
            sizes.append(minimum)
        }
        return sizes
    }

    /// Whether every element segment is active (passive ones could be dropped by `elem.drop`).
    private static func hasOnlyActiveElements(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        var reader = Reader(bytes: bytes, position: range.lowerBound)
        guard let count = reader.unsigned() else { return false }
        for _ in 0..<count {
            guard let flags = reader.unsigned(), flags <= 7 else { return false }
            if flags & 0x01 == 1 && flags & 0x02 == 0 { return false }  // passive
            if flags & 0x01 == 0 {  // active: [table index] offset expression
                if flags & 0x02 != 0 { guard reader.unsigned() != nil else { return false } }
                guard reader.skipConstantExpression() else { return false }
            }
            if flags == 0 || flags == 4 {
                // no element kind or type
            } else {
                guard reader.byte() != nil else { return false }  // elemkind or reftype
            }
            guard let items = reader.unsigned() else { return false }
            for _ in 0..<items {
                if flags & 0x04 != 0 {
                    guard reader.skipConstantExpression() else { return false }
                } else {
                    guard reader.unsigned() != nil else { return false }
                }
            }
        }
        return true
    }

    /// Indices (among the module's own globals) of the mutable ones.
    private static func mutableGlobals(_ bytes: [UInt8], _ range: Range<Int>) -> [Int]? {
        var reader = Reader(bytes: bytes, position: range.lowerBound)
        guard let count = reader.unsigned() else { return nil }
        var mutable: [Int] = []
        for index in 0..<count {
            guard reader.byte() != nil, let mutability = reader.byte(), reader.skipConstantExpression() else { return nil }
            if mutability == 0x01 { mutable.append(index) }
        }
        return mutable
    }

    private static func leb(_ value: Int) -> [UInt8] {
        var value = UInt64(value)
        var out: [UInt8] = []
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            out.append(byte)
        } while value != 0
        return out
    }

    private struct Reader {
        let bytes: [UInt8]
        var position: Int

        var atEnd: Bool { position >= bytes.count }

        mutating func byte() -> UInt8? {
            guard position < bytes.count else { return nil }
            defer { position += 1 }
            return bytes[position]
        }

        /// An unsigned or signed LEB128 of at most 10 bytes (its value only matters unsigned).
        mutating func unsigned() -> Int? {
            var result = 0
            var shift = 0
            while let byte = byte() {
                if shift < 63 { result |= Int(byte & 0x7F) << shift }
                shift += 7
                if byte & 0x80 == 0 { return result }
                if shift > 70 { return nil }
            }
            return nil
        }

        mutating func skip(_ count: Int) -> Bool {
            guard position + count <= bytes.count else { return false }
            position += count
            return true
        }

        mutating func skipName() -> Bool {
            guard let length = unsigned() else { return false }
            return skip(length)
        }

        /// Limits: the minimum and, when given, the maximum.
        mutating func limits() -> (minimum: Int, maximum: Int?)? {
            guard let flags = byte(), let minimum = unsigned() else { return nil }
            guard flags & 0x01 != 0 else { return (minimum, nil) }
            guard let maximum = unsigned() else { return nil }
            return (minimum, maximum)
        }

        /// A constant expression up to its `end`: the instructions allowed there.
        mutating func skipConstantExpression() -> Bool {
            while let opcode = byte() {
                switch opcode {
                case 0x0B: return true  // end
                case 0x41, 0x42, 0x23, 0xD0, 0xD2: guard unsigned() != nil else { return false }  // consts, global.get, ref.null/func
                case 0x43: guard skip(4) else { return false }
                case 0x44: guard skip(8) else { return false }
                case 0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E: continue  // extended constant arithmetic
                case 0xFD:  // v128.const
                    guard unsigned() == 12, skip(16) else { return false }
                default: return false
                }
            }
            return false
        }
    }
}
