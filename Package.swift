// swift-tools-version:6.0
import PackageDescription

// Strict concurrency is the Swift 6 language mode default; warnings are errors in CI through
// `-warnings-as-errors` in the Makefile rather than here, so that a new compiler's new warning
// does not break a user's plain `swift build`.
let package = Package(
    name: "mutewarden",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mutewarden", targets: ["mutewarden"]),
        .executable(name: "mutewarden-bench", targets: ["mutewarden-bench"]),
        .executable(name: "mutewarden-gws-bench", targets: ["mutewarden-gws-bench"]),
        .executable(name: "mutewarden-journal-bench", targets: ["mutewarden-journal-bench"]),
        .executable(name: "mutewarden-loadgen", targets: ["mutewarden-loadgen"]),
        .library(name: "MutewardenModel", targets: ["MutewardenModel"]),
        .library(name: "MutewardenEngine", targets: ["MutewardenEngine"]),
        .library(name: "MutewardenConfig", targets: ["MutewardenConfig"]),
        .library(name: "MutewardenLogging", targets: ["MutewardenLogging"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C libraries, reached through the system's pkg-config files.
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CLibWebSockets", pkgConfig: "libwebsockets",
            providers: [.apt(["libwebsockets-dev"])]),
        .systemLibrary(
            name: "CSystemd", pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]),
        // Typed wrappers for what Swift cannot import: variadic C functions and macros.
        .target(
            name: "CMutewardenShims", dependencies: ["CCurl", "CLibWebSockets", "CSystemd"],
            // OpenSSL (which libwebsockets is built on) explains why a server certificate failed.
            linkerSettings: [.linkedLibrary("crypto")]),

        // The contract between the engine and the providers: normalized calls, actions, policies.
        .target(name: "MutewardenModel"),
        // Call tracking, policy windows and action dispatch. Pure Swift, no I/O, clock injected.
        .target(
            name: "MutewardenEngine", dependencies: ["MutewardenModel"],
            // The engine is single-threaded by construction (one owner, no escaping closures over
            // its state), so the runtime exclusivity checks on its class properties can only cost:
            // they were 8% of the benchmark's instructions.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        // YAML configuration: schema, diagnostics with file:line:column, secrets, drop-ins.
        .target(
            name: "MutewardenConfig",
            dependencies: ["MutewardenModel", .product(name: "Yams", package: "Yams")]),
        // swift-log handlers (stderr, journald), audit records and PAN masking.
        .target(
            name: "MutewardenLogging",
            dependencies: ["MutewardenModel", "CSystemd", .product(name: "Logging", package: "swift-log")]),
        // A small JSON value type with a fast UTF-8 parser: platform events arrive by the thousand.
        .target(name: "MutewardenJSON"),
        // Bayeux (CometD) client: handshake, connect, subscribe, advice; transport-agnostic.
        .target(name: "MutewardenBayeux", dependencies: ["MutewardenJSON", "MutewardenModel", "MutewardenSupervisor"]),
        // Bayeux's websocket connection type over the WebSocket client: one connection per session.
        .target(
            name: "MutewardenBayeuxWebSocket",
            dependencies: [
                "MutewardenBayeux", "MutewardenJSON", "MutewardenModel", "MutewardenSupervisor", "MutewardenWebSocket",
            ]),
        // Genesys Web Services: CometD call events to normalized updates, actions to voice API calls.
        .target(
            name: "MutewardenGenesys",
            dependencies: [
                "MutewardenModel", "MutewardenJSON", "MutewardenBayeux", "MutewardenBayeuxWebSocket", "MutewardenHTTP",
                "MutewardenConfig", "MutewardenSupervisor", "MutewardenWebSocket",
            ]),
        // Connection supervision shared by every transport: connect, run, back off, reconnect.
        .target(name: "MutewardenSupervisor", dependencies: ["MutewardenModel"]),
        // HTTP client on libcurl's multi interface, driven by one thread.
        .target(
            name: "MutewardenHTTP",
            dependencies: ["MutewardenModel", "MutewardenSupervisor", "CCurl", "CMutewardenShims"]),
        // WebSocket client on libwebsockets 4.1, one service thread per context.
        .target(
            name: "MutewardenWebSocket",
            dependencies: ["MutewardenModel", "MutewardenSupervisor", "CLibWebSockets", "CMutewardenShims"]),
        // The built-in simulated contact center: a `simulator` feed and a `log` target.
        .target(
            name: "MutewardenSimulator",
            dependencies: ["MutewardenModel", "MutewardenConfig"]),
        // Wiring: providers, the engine thread, action execution, signals.
        .target(
            name: "MutewardenDaemon",
            dependencies: [
                "MutewardenModel", "MutewardenEngine", "MutewardenConfig", "MutewardenLogging",
                "MutewardenSimulator", "MutewardenGenesys", "MutewardenHTTP", "CMutewardenShims", "CSystemd",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "mutewarden",
            dependencies: [
                "MutewardenDaemon", "MutewardenConfig", "MutewardenLogging", "CMutewardenShims", "CMutewardenStartup",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // The daemon's allocator, jemalloc with one arena (see startup.c). Linked into the
        // executable alone: libraries and tests keep the system's malloc.
        .target(name: "CMutewardenStartup", linkerSettings: [.linkedLibrary("jemalloc")]),

        // Benchmarks are executables, never timed tests: the machines are shared and noisy.
        .target(name: "CAllocationCounter"),
        // GWS feed throughput: a recorded stream through the Bayeux client and the GWS mapping
        // into the engine, with no network.
        .executableTarget(
            name: "mutewarden-gws-bench",
            dependencies: ["MutewardenBayeux", "MutewardenGenesys", "MutewardenJSON", "MutewardenEngine", "MutewardenModel"]),
        .executableTarget(
            name: "mutewarden-bench",
            dependencies: ["MutewardenModel", "MutewardenEngine", "CAllocationCounter"]),
        .executableTarget(
            name: "mutewarden-journal-bench",
            dependencies: [
                "MutewardenLogging", "MutewardenModel", .product(name: "Logging", package: "swift-log"),
            ]),

        // WebSocket client throughput against a local flooding server; also an executable.
        .executableTarget(
            name: "mutewarden-ws-bench", dependencies: ["MutewardenWebSocket", "MutewardenModel"]),

        // HTTP client throughput: the Swift layer, and the same requests on libcurl in plain C
        // (plus the C keep-alive server both are measured against), so the overhead is a ratio.
        .executableTarget(name: "mutewarden-http-bench", dependencies: ["MutewardenHTTP", "MutewardenModel"]),
        .executableTarget(name: "mutewarden-http-cbench", dependencies: ["CCurl"]),

        // End-to-end load: plays GWS (CometD over long-polling and WebSocket, the voice API) on one
        // libwebsockets server context, runs the real daemon against it, and measures event-to-action
        // latency, throughput and the daemon's CPU and memory (make bench, docs/performance.md).
        .executableTarget(
            name: "mutewarden-loadgen", dependencies: ["CLibWebSockets", "CMutewardenShims", "MutewardenJSON"]),

        // What several test targets share: reading a child process's output safely.
        .target(name: "MutewardenTestSupport", path: "Tests/MutewardenTestSupport"),

        .testTarget(name: "MutewardenEngineTests", dependencies: ["MutewardenEngine", "MutewardenModel"]),
        .testTarget(
            name: "MutewardenConfigTests",
            dependencies: ["MutewardenConfig", "MutewardenModel"]),
        .testTarget(
            name: "MutewardenLoggingTests",
            dependencies: [
                "MutewardenLogging", "MutewardenModel",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(name: "MutewardenJSONTests", dependencies: ["MutewardenJSON"]),
        .testTarget(name: "MutewardenBayeuxTests", dependencies: ["MutewardenBayeux", "MutewardenJSON", "MutewardenModel"]),
        .testTarget(
            name: "MutewardenGenesysTests",
            dependencies: ["MutewardenGenesys", "MutewardenJSON", "MutewardenModel", "MutewardenConfig"],
            resources: [.copy("Fixtures")]),
        // Real peers for the GWS provider: a Faye Bayeux server and a fake of the GWS REST API in
        // one Ruby process (Peers/, run with ruby from the source tree), and their smoke tests.
        // The GWS peers (Faye and a fake GWS REST API), and the Genesys provider run against them.
        .testTarget(
            name: "GenesysPeerTests",
            dependencies: [
                "MutewardenJSON", "MutewardenDaemon", "MutewardenConfig", "MutewardenLogging", "MutewardenModel",
                "MutewardenTestSupport", .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Peers"]),
        .testTarget(name: "MutewardenSupervisorTests", dependencies: ["MutewardenSupervisor", "MutewardenModel"]),
        // Peers/ holds the test servers, run with python3 from the source tree.
        .testTarget(
            name: "MutewardenHTTPTests", dependencies: ["MutewardenHTTP", "MutewardenModel", "MutewardenTestSupport"],
            exclude: ["Peers"]),
        .testTarget(
            name: "MutewardenWebSocketTests",
            dependencies: ["MutewardenWebSocket", "MutewardenModel", "MutewardenSupervisor", "MutewardenTestSupport"],
            // The peers are scripts the tests run from the source tree, not resources to bundle.
            exclude: ["Peers"]),
        .testTarget(
            name: "MutewardenSimulatorTests",
            dependencies: ["MutewardenSimulator", "MutewardenConfig", "MutewardenModel"]),
        .testTarget(
            name: "MutewardenDaemonTests",
            dependencies: [
                "MutewardenDaemon", "MutewardenHTTP", "MutewardenLogging", "MutewardenModel", "MutewardenTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The binaries as an operator runs them, and the daemon under mutewarden-loadgen.
        .testTarget(name: "EndToEndTests", dependencies: ["mutewarden", "mutewarden-loadgen", "MutewardenTestSupport"]),
        // The systemd unit, the journal catalog and the journald backend against real systemd
        // tools and a private systemd-journald (root only; see PrivateJournal.swift).
        .testTarget(
            name: "SystemdTests",
            dependencies: [
                "mutewarden", "MutewardenLogging", "MutewardenModel",
                .product(name: "Logging", package: "swift-log"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
