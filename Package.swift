// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "swift-nex",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "NATSWire", targets: ["NATSWire"]),
        .library(name: "NexControl", targets: ["NexControl"]),
        .library(name: "NexAgentBus", targets: ["NexAgentBus"]),
        .library(name: "NexWorkloads", targets: ["NexWorkloads"]),
        .library(name: "NexNodeKit", targets: ["NexNodeKit"]),
        .library(name: "NexAgentKit", targets: ["NexAgentKit"]),
        .executable(name: "nex-node", targets: ["nex-node"]),
        .executable(name: "nex-agent", targets: ["nex-agent"]),
        .executable(name: "nexctl", targets: ["nexctl"]),
        .executable(name: "natswire-bench", targets: ["natswire-bench"]),
        .executable(name: "jetstream-bench", targets: ["jetstream-bench"]),
        .executable(name: "natswire-demo", targets: ["natswire-demo"]),
        .executable(name: "workload-bench", targets: ["workload-bench"]),
        .executable(name: "function-bench", targets: ["function-bench"]),
        .executable(name: "fleet-bench", targets: ["fleet-bench"]),
        .executable(name: "soak-bench", targets: ["soak-bench"]),
        .executable(name: "function-runtime-bench", targets: ["function-runtime-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The node's metrics (swift-metrics), served in Prometheus's text format.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Traces: the API everywhere, our OTLP/HTTP exporter in NexTelemetry.
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // NexFunctions uses two of WasmKit's SPIs (resource limits, in-memory WASI files): stay on 0.4.x.
        .package(url: "https://github.com/swiftwasm/WasmKit", .upToNextMinor(from: "0.4.2")),
        // `swift package generate-documentation` (DocC catalogs of NATSWire and NexControl).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            path: "Sources/CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CJavaScriptCore",
            path: "Sources/CJavaScriptCore",
            pkgConfig: "javascriptcoregtk-4.1",
            providers: [.apt(["libjavascriptcoregtk-4.1-dev"])]
        ),
        // fork/exec with process groups, parent-death signals, rlimits and cgroups.
        .target(name: "CProcessSpawn"),
        .target(
            name: "NATSWire",
            dependencies: [
                "CSodium",
                "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "NexControl",
            dependencies: ["NATSWire", .product(name: "Tracing", package: "swift-distributed-tracing")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "NexAgentBus",
            dependencies: [
                "NATSWire", "NexControl",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // What both sides of a workload share: spawning processes (rlimits, cgroups, process
        // groups, parent-death signals) and the restart policy.
        .target(
            name: "NexWorkloads",
            dependencies: ["NexControl", "CProcessSpawn"],
            swiftSettings: swiftSettings
        ),
        // The node side: workload manager, agent supervisor, artifacts, host services, the node service.
        .target(
            name: "NexNodeKit",
            dependencies: [
                "NATSWire", "NexControl", "NexAgentBus", "NexWorkloads",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                "NexTelemetry",
            ],
            swiftSettings: swiftSettings
        ),
        // Traces out of the process: a swift-distributed-tracing Tracer and its OTLP/HTTP exporter
        // (node and nexctl; the agent only carries `traceparent` along).
        .target(
            name: "NexTelemetry",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The agent side, kept small: the agent service, the native runner, the function-runtime protocols.
        .target(
            name: "NexAgentKit",
            dependencies: [
                "NATSWire", "NexControl", "NexAgentBus", "NexWorkloads", "CProcessSpawn",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Function runtimes (WasmKit, JavaScriptCore): linked by nex-agent only.
        .target(
            name: "NexFunctions",
            dependencies: [
                "NexAgentKit", "CJavaScriptCore",
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "WasmKitWASI", package: "WasmKit"),
                .product(name: "WASI", package: "WasmKit"),
            ],
            swiftSettings: swiftSettings
        ),
        // The command-line options nex-node and nexctl share.
        .target(
            name: "NexCLISupport",
            dependencies: ["NexControl", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "nex-node",
            dependencies: [
                "NexNodeKit", "NexCLISupport", "NexTelemetry",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "nex-agent",
            dependencies: [
                "NexAgentKit", "NexFunctions",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "nexctl",
            dependencies: [
                "NexControl", "NexCLISupport", "NexTelemetry",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "natswire-bench",
            dependencies: ["NATSWire"],
            path: "Benchmarks/natswire-bench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "jetstream-bench",
            dependencies: ["NATSWire"],
            path: "Benchmarks/jetstream-bench",
            swiftSettings: swiftSettings
        ),
        // What the node benchmarks read about processes (/proc), and their operator-mode setup.
        .target(
            name: "BenchSupport",
            dependencies: ["NATSWire", "NATSTestSupport"],
            path: "Benchmarks/BenchSupport",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "workload-bench",
            dependencies: ["NATSWire", "NexControl", "BenchSupport"],
            path: "Benchmarks/workload-bench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fleet-bench",
            dependencies: ["NATSWire", "NexControl", "NATSTestSupport"],
            path: "Benchmarks/fleet-bench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "function-bench",
            dependencies: ["NATSWire", "NexControl", "BenchSupport"],
            path: "Benchmarks/function-bench",
            swiftSettings: swiftSettings
        ),
        // The function runtimes in process (no node, no NATS): echo latency and throughput.
        .executableTarget(
            name: "function-runtime-bench",
            dependencies: ["NexFunctions", "NexAgentKit", "NexAgentBus", "NexControl"],
            path: "Benchmarks/function-runtime-bench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "soak-bench",
            dependencies: ["NATSWire", "NexControl", "BenchSupport"],
            path: "Benchmarks/soak-bench",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "echo-service",
            dependencies: ["NATSWire"],
            path: "examples/echo-service",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "natswire-demo",
            dependencies: ["NATSWire"],
            path: "examples/natswire-demo",
            swiftSettings: swiftSettings
        ),
        // Starts real nats-server processes for tests; never a fake NATS.
        .target(
            name: "NATSTestSupport",
            dependencies: ["NATSWire"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NATSWireTests",
            dependencies: [
                "NATSWire", "NATSTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NexControlTests",
            dependencies: ["NexControl", "NATSTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NexAgentBusTests",
            dependencies: [
                "NexAgentBus", "NATSTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NexFunctionsTests",
            dependencies: ["NexFunctions", "NexAgentKit", "NATSTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NexTelemetryTests",
            dependencies: ["NexTelemetry"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NexNodeKitTests",
            dependencies: [
                "NexNodeKit", "NATSTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // The agent side and the shared process layer (NexWorkloads) under it.
        .testTarget(
            name: "NexAgentKitTests",
            dependencies: ["NexAgentKit", "NATSTestSupport"],
            swiftSettings: swiftSettings
        ),
        // Real nats-server + real nex-node/nexctl processes; needs the executables built.
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["NexControl", "NexWorkloads", "NexAgentBus", "NATSWire", "NATSTestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
