/// A user the bus knows: its permissions, and whether it is trusted (the node's own).
///
/// A trusted user is never cut off as a slow consumer nor rate-limited, and holds any number
/// of connections; when one of its connections falls behind, the bus stops reading from
/// untrusted publishers instead (they are rate-limited, so what waits for it stays bounded).
struct BusUser: Sendable, Equatable {
    var permissions: BusPermissions
    var isTrusted: Bool
}
