/// How the client proves who it is to the server.
public enum NATSAuth: Sendable, Equatable {
    /// No credentials (or those embedded in the server URL: `nats://user:pass@host`, `nats://token@host`).
    case none
    /// `auth_token`.
    case token(String)
    /// `user` and `pass`.
    case userPassword(user: String, password: String)
    /// An nkey seed (`SU...`): the client signs the server's nonce.
    case nkey(seed: String)
    /// A decorated `.creds` file holding a user JWT and its nkey seed.
    case credentialsFile(path: String)
    /// A user JWT and the nkey seed that signs nonces for it.
    case jwt(String, seed: String)
}
