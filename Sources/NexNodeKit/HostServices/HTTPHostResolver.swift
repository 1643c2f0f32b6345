import NexAgentBus
import NexWorkloads
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOPosix
import Synchronization

/// Host names to IP addresses for the `http` host service, the way a connection would resolve
/// them: an address literal as it is (`inet_pton`), anything else with getaddrinfo(3) (so the
/// numeric forms it accepts, `0x7f000001`, `2130706433`, `127.1`, are seen for what they are),
/// on a thread pool of its own (getaddrinfo blocks, and a name server that never answers must
/// not hold up anything else).
///
/// At most ``maxLookups`` lookups run or wait at once (more are answered 503 at once), and a
/// caller that is cancelled (the call's timeout) is answered at once: the lookup finishes on
/// its thread without it. So one function resolving names on a slow server cannot stop the
/// others' calls.
enum HTTPHostResolver {
    /// One address: its bytes in network order (4 or 16) and its text (`127.0.0.1`, `::1`).
    struct Address: Sendable, Equatable {
        var bytes: [UInt8]
        var text: String
    }

    /// `host` when it is an IPv4 or IPv6 literal (without brackets), else nil.
    static func literal(_ host: String) -> Address? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return address(withUnsafeBytes(of: &v4) { Array($0) })
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return address(withUnsafeBytes(of: &v6) { Array($0) })
        }
        return nil
    }

    /// Lookups running or waiting at once, at most.
    static let maxLookups = 16

    private static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        return pool
    }()

    private static let lookups = Mutex(0)

    /// Every address `host` resolves to, in getaddrinfo's order, without duplicates.
    static func resolve(_ host: String) async throws(HostServiceFailure) -> [Address] {
        let admitted = lookups.withLock { count -> Bool in
            guard count < maxLookups else { return false }
            count += 1
            return true
        }
        guard admitted else {
            throw HostServiceFailure(503, "http: \(maxLookups) name lookups are in progress; try again")
        }
        typealias Outcome = Result<[Address], HostServiceFailure>
        let waiter = Mutex<CheckedContinuation<Outcome, Never>?>(nil)
        let cancelled = Outcome.failure(HostServiceFailure(504, "http: looking up \(host) was given up (the call timed out)"))
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
                waiter.withLock { $0 = continuation }
                pool.submit { _ in
                    let result = lookUp(host)
                    lookups.withLock { $0 -= 1 }
                    waiter.withLock { $0.take() }?.resume(returning: result)
                }
                if Task.isCancelled { waiter.withLock { $0.take() }?.resume(returning: cancelled) }
            }
        } onCancel: {
            waiter.withLock { $0.take() }?.resume(returning: cancelled)
        }
        return try outcome.get()
    }

    private static func lookUp(_ host: String) -> Result<[Address], HostServiceFailure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else {
            let reason = String(cString: gai_strerror(status))
            return .failure(HostServiceFailure(502, "http: cannot resolve \(host): \(reason)"))
        }
        defer { freeaddrinfo(list) }
        var addresses: [Address] = []
        var entry = list
        while let info = entry?.pointee {
            defer { entry = info.ai_next }
            guard let socketAddress = info.ai_addr else { continue }
            let bytes: [UInt8]
            switch info.ai_family {
            case AF_INET:
                var sin = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
                bytes = withUnsafeBytes(of: &sin.sin_addr) { Array($0) }
            case AF_INET6:
                var sin6 = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee }
                bytes = withUnsafeBytes(of: &sin6.sin6_addr) { Array($0) }
            default:
                continue
            }
            let found = address(bytes)
            if !addresses.contains(found) { addresses.append(found) }
        }
        guard !addresses.isEmpty else {
            return .failure(HostServiceFailure(502, "http: \(host) resolves to no IP address"))
        }
        return .success(addresses)
    }

    private static func address(_ bytes: [UInt8]) -> Address {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var copy = bytes
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        _ = copy.withUnsafeMutableBytes { raw in inet_ntop(family, raw.baseAddress, &text, socklen_t(text.count)) }
        return Address(bytes: bytes, text: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}
