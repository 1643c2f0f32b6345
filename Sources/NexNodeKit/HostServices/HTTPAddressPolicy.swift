/// The addresses the `http` host service refuses to connect to, unless `allowed_hosts` names
/// the host: everything that is not a public unicast address, so a function cannot reach the
/// node's own services (the NATS monitor, the agent bus), its network or a cloud metadata service.
///
/// | refused | IPv4 | IPv6 |
/// |---|---|---|
/// | unspecified, "this network" | `0.0.0.0/8` | `::` |
/// | loopback | `127.0.0.0/8` | `::1` |
/// | private | `10/8`, `172.16/12`, `192.168/16` | `fc00::/7` (unique local), `fec0::/10` (site-local) |
/// | link-local (metadata `169.254.169.254`) | `169.254/16` | `fe80::/10` |
/// | shared address space (CGNAT) | `100.64/10` | |
/// | IETF protocol assignments, benchmarking | `192.0.0/24`, `198.18/15` | |
/// | multicast, reserved, broadcast | `224/4`, `240/4` | `ff00::/8` |
/// | IPv4 inside IPv6 | | mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96` and 6to4 `2002::/16`: by their IPv4 address; compatible `::/96` and local NAT64 `64:ff9b:1::/48`: always |
enum HTTPAddressPolicy {
    /// Why a connection to `address` (4 or 16 bytes, network order) is refused; nil when the
    /// address is public.
    static func refusal(_ address: [UInt8]) -> String? {
        switch address.count {
        case 4: return refusal(v4: address)
        case 16: return refusal(v6: address)
        default: return "not an IP address"
        }
    }

    private static func refusal(v4 b: [UInt8]) -> String? {
        switch (b[0], b[1], b[2]) {
        case (0, _, _): return "an unspecified address"
        case (127, _, _): return "a loopback address"
        case (10, _, _): return "a private address"
        case (172, let second, _) where second & 0xF0 == 16: return "a private address"
        case (192, 168, _): return "a private address"
        case (169, 254, _): return "a link-local address (where cloud metadata services live)"
        case (100, let second, _) where second & 0xC0 == 64: return "a shared (carrier-grade NAT) address"
        case (192, 0, 0): return "a reserved address"
        case (198, let second, _) where second & 0xFE == 18: return "a reserved address"
        case (let first, _, _) where first >= 224 && first <= 239: return "a multicast address"
        case (let first, _, _) where first >= 240: return "a reserved address"
        default: return nil
        }
    }

    private static func refusal(v6 b: [UInt8]) -> String? {
        let zeroPrefix = { (count: Int) in b.prefix(count).allSatisfy { $0 == 0 } }
        if zeroPrefix(16) { return "an unspecified address" }
        if zeroPrefix(15) && b[15] == 1 { return "a loopback address" }
        if zeroPrefix(10) && b[10] == 0xFF && b[11] == 0xFF {
            return refusal(v4: Array(b[12..<16])).map { "\($0) (IPv4-mapped)" }
        }
        if zeroPrefix(12) { return "an IPv4-compatible address (deprecated)" }
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B {
            if b[4...11].allSatisfy({ $0 == 0 }) {
                return refusal(v4: Array(b[12..<16])).map { "\($0) (NAT64)" }
            }
            if b[4] == 0x00 && b[5] == 0x01 { return "a local-use NAT64 address" }
        }
        if b[0] == 0x20 && b[1] == 0x02 { return refusal(v4: Array(b[2..<6])).map { "\($0) (6to4)" } }
        if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return "a link-local address" }
        if b[0] == 0xFE && b[1] & 0xC0 == 0xC0 { return "a site-local address" }
        if b[0] & 0xFE == 0xFC { return "a private (unique local) address" }
        if b[0] == 0xFF { return "a multicast address" }
        return nil
    }
}
