import NATSWire
import Testing

@Suite struct RedactingCredentialsTests {
    @Test(arguments: [
        ("nats://alice:s3cret@127.0.0.1:4222", "nats://***@127.0.0.1:4222"),
        ("tls://tok3n@nats.example.com", "tls://***@nats.example.com"),
        ("invalid server URL 'nats://u:p@h:99999': port", "invalid server URL 'nats://***@h:99999': port"),
        ("nats://a:b@one:4222,nats://c:d@two:4222", "nats://***@one:4222,nats://***@two:4222"),
        ("nats://user:p@ss@host/path", "nats://***@host/path"),
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("no url here", "no url here"),
    ])
    func passwordsAndTokensNeverShow(_ input: String, _ expected: String) {
        #expect(input.redactingURLCredentials == expected)
    }
}
