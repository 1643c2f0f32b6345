import FoundationEssentials
import NATSWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything needed to deploy one workload, before it is addressed to a node: turned into a
/// signed, sealed ``DeployRequest`` by ``deployRequest(issuer:sender:targetNode:targetXKey:issuedAt:)``.
///
/// ```swift
/// let submission = try WorkloadSubmission(
///     name: "echo", type: "native", location: ArtifactLocation("nats://NEXCLIFILES/echo"),
///     artifactHash: ArtifactDigest.sha256Hex(ofFile: "./echo"),
///     environment: ["NATS_URL": "nats://10.0.0.1:4222"])
/// let request = try submission.deployRequest(issuer: issuer, sender: xkey,
///                                            targetNode: info.nodeID, targetXKey: info.publicXKey)
/// ```
public struct WorkloadSubmission: Sendable, Equatable {
    /// The workload name: the JWT's `sub`, `[a-zA-Z0-9_-]`, at most 64 characters.
    public var name: String
    /// `native`, `wasm`, `javascript` (or Nex's `v8`), lowercase.
    public var type: String
    /// Where the node fetches the artifact from.
    public var location: ArtifactLocation
    /// SHA-256 of the artifact, hex: the JWT's `nats.hash`.
    public var artifactHash: String
    /// Sealed to the node; never sent in clear.
    public var environment: [String: String]
    /// The arguments of a native service.
    public var argv: [String]?
    /// Free text, shown by `info`.
    public var description: String?
    /// Services only: restart when it exits.
    public var essential: Bool?
    /// Functions only: the subjects that trigger it.
    public var triggerSubjects: [String]?
    /// The JetStream domain of the object store holding the artifact.
    public var jsDomain: String?
    /// Resource limits; nil values take the node's `workload_limits`.
    public var limits: ResourceLimits?
    /// The host's network (nil: the default) or none.
    public var network: WorkloadNetwork?
    /// An essential service that another node of the nexus starts again when its node is
    /// lost: the environment is then sealed to the nexus's xkey (the node's `nexus_xkey`).
    public var reschedulable: Bool? {
        didSet { if reschedulable != true { reschedulable = nil } }
    }

    /// The workload types a node may run; `v8` is Nex's name for `javascript`.
    public static let knownTypes = ["native", "wasm", "javascript", "v8"]

    /// A submission, checked: the name is a valid workload name, the type is known, triggers
    /// are given only to functions and `essential` only to services.
    public init(
        name: String, type: String = "native", location: ArtifactLocation, artifactHash: String,
        environment: [String: String] = [:], argv: [String]? = nil, description: String? = nil,
        essential: Bool? = nil, triggerSubjects: [String]? = nil, jsDomain: String? = nil
    ) throws {
        try WorkloadClaims.validateName(name)
        let type = type.lowercased()
        guard Self.knownTypes.contains(type) else { throw WorkloadSubmissionError.unknownType(type) }
        guard ArtifactDigest.isSHA256Hex(artifactHash) else {
            throw WorkloadSubmissionError.unknownArtifactDigest(
                location: location.url, reason: "'\(artifactHash)' is not a SHA-256 hex digest")
        }
        let isFunction = type != "native"
        if let triggerSubjects, !triggerSubjects.isEmpty, !isFunction {
            throw WorkloadSubmissionError.fieldNotAllowed(
                field: "trigger_subjects", type: type, reason: "only functions (wasm, javascript, v8) have trigger subjects")
        }
        if essential == true, isFunction {
            throw WorkloadSubmissionError.fieldNotAllowed(
                field: "essential", type: type, reason: "only services (native) are restarted")
        }
        self.name = name
        self.type = type
        self.location = location
        self.artifactHash = artifactHash.lowercased()
        self.environment = environment
        self.argv = argv.flatMap { $0.isEmpty ? nil : $0 }
        self.description = description
        self.essential = essential == true ? true : nil
        self.triggerSubjects = triggerSubjects.flatMap { $0.isEmpty ? nil : $0 }
        self.jsDomain = jsDomain
    }

    /// Signs the deploy JWT (`sub` = ``name``, `nats.hash` = ``artifactHash``) with `issuer`,
    /// seals ``environment`` from `sender` to `targetXKey` (the node's public xkey; the nexus's
    /// for a ``reschedulable`` workload), and builds the request.
    public func deployRequest(
        issuer: NKeyPair, sender: XKeyPair, targetNode: String, targetXKey: String, issuedAt: Date = Date()
    ) throws -> DeployRequest {
        if reschedulable == true, essential != true {
            throw WorkloadSubmissionError.fieldNotAllowed(
                field: "reschedulable", type: type, reason: "only essential services are rescheduled")
        }
        let claims = try WorkloadClaims.deploy(name: name, artifactHash: artifactHash, issuer: issuer, issuedAt: issuedAt)
        var request = try EnvironmentSealing.deployRequest(
            type: type, location: location.url, workloadJWT: claims.token, environment: environment,
            sender: sender, targetNode: targetNode, targetXKey: targetXKey, argv: argv, description: description,
            essential: essential, triggerSubjects: triggerSubjects, jsDomain: jsDomain)
            .with(limits: limits, network: network)
        request.reschedulable = reschedulable
        return request
    }

    // MARK: Command-line helpers (nexctl)

    /// Parses `KEY=VALUE` arguments (the value may contain `=` and may be empty; a later key
    /// wins over an earlier one).
    package static func parseEnvironment(_ pairs: [String]) throws(WorkloadSubmissionError) -> [String: String] {
        var environment: [String: String] = [:]
        for pair in pairs {
            guard let equals = pair.firstIndex(of: "=") else { throw .invalidEnvironmentPair(pair) }
            let key = String(pair[..<equals])
            guard !key.isEmpty, !key.contains(where: \.isWhitespace) else { throw .invalidEnvironmentPair(pair) }
            environment[key] = String(pair[pair.index(after: equals)...])
        }
        return environment
    }

    /// The program arguments from `--argv` values: one value is split on whitespace
    /// (`--argv "-p 8080"`), several values are taken as they are, one argument each.
    package static func arguments(fromOptionValues values: [String]) -> [String] {
        if values.count == 1 { return values[0].split(whereSeparator: \.isWhitespace).map(String.init) }
        return values
    }

    /// A valid workload name from a file name: its last path component, every character outside
    /// `[a-zA-Z0-9_-]` replaced by `-`, cut to ``WorkloadClaims/maxNameLength``.
    package static func workloadName(forFile path: String) -> String {
        let base = path.split(separator: "/").last.map(String.init) ?? ""
        let name = String(base.unicodeScalars.map { scalar -> Character in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "_", "-": Character(scalar)
            default: "-"
            }
        }.prefix(WorkloadClaims.maxNameLength))
        return name.isEmpty ? "workload" : name
    }

    /// The object store key `devrun` uploads a file under: its last path component with the
    /// dots removed, as Nex 0.2 does (`echo.wasm` becomes `echowasm`).
    package static func objectKey(forFile path: String) -> String {
        let base = path.split(separator: "/").last.map(String.init) ?? ""
        let key = String(base.filter { $0 != "." })
        return key.isEmpty ? "workload" : key
    }

    /// The operating system and Go architecture name (`amd64`, `arm64`, `386`, `arm`, ...) of an
    /// ELF executable, for an auction; nil when the file is not ELF or the machine is unknown.
    public static func platform(ofExecutable path: String) -> (os: String, arch: String)? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var header = [UInt8](repeating: 0, count: 20)
        let count = header.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, 20) }
        guard count == 20, header.starts(with: [0x7F, 0x45, 0x4C, 0x46]) else { return nil }
        let machine = header[5] == 2 ? UInt16(header[18]) << 8 | UInt16(header[19]) : UInt16(header[19]) << 8 | UInt16(header[18])
        let arch: String
        switch machine {
        case 62: arch = "amd64"
        case 183: arch = "arm64"
        case 3: arch = "386"
        case 40: arch = "arm"
        case 243: arch = "riscv64"
        case 21: arch = "ppc64le"
        case 22: arch = "s390x"
        default: return nil
        }
        return ("linux", arch)
    }
}

extension DeployRequest {
    /// This request with `limits` and `network` set.
    func with(limits: ResourceLimits?, network: WorkloadNetwork?) -> DeployRequest {
        var request = self
        request.limits = limits
        request.network = network
        return request
    }
}
