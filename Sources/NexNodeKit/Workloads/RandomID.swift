/// Random ids for agents and workloads: lower-case letters and digits, so they are safe as
/// NATS subject tokens, file names and cgroup names.
enum RandomID {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")

    static func make(length: Int) -> String {
        var random = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet.randomElement(using: &random)! })
    }
}
