/// Random, unique identifiers for inboxes: 22 characters of base62, like nats.go's NUID.
enum NUID {
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    static func next() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 22)
        for index in bytes.indices {
            bytes[index] = alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
