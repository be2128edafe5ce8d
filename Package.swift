// swift-tools-version:6.0
import Foundation
import PackageDescription

// The layout is the architecture (docs/architecture.md#module-layout):
//   Sources/C           module maps over libcurl, libwebsockets, libsystemd, and the C shims
//   Sources/Core        the model (the contract) and the engine (pure Swift, no I/O)
//   Sources/Transports  HTTP (libcurl), WebSocket (libwebsockets), connection supervision
//   Sources/Protocols   JSON, Bayeux (CometD), socket.io
//   Sources/Providers   the provider kit, and one folder per platform
//   Sources/Runtime     configuration, logging, the daemon
//   Sources/CLI         the executable, which is also the composition root (BuiltInProviders)
// Benchmarks are a package of their own in Benchmarks/ (the load generator stays here: tests run it).
//
// Strict concurrency is the Swift 6 language mode's default. The Makefile's `check-warnings` fails
// CI on a warning in our own sources, rather than `-warnings-as-errors` here, so that a new
// compiler's new warning does not break a user's plain `swift build`.

// MARK: Providers
//
// Adding a platform is its folder in Sources/Providers/<Name>, its tests in Tests/Providers/<Name>,
// one entry here and one line in Sources/CLI/mutewarden/BuiltInProviders.swift (CONTRIBUTING.md).
struct ProviderSpec {
    var name: String
    /// What the provider's library uses besides the kit and the model.
    var dependencies: [Target.Dependency]
    /// Unit tests' extra dependencies and resources.
    var testDependencies: [Target.Dependency] = []
    var testResources: [Resource]? = nil
    /// Tests against real peers (Tests/Providers/<Name>/PeerTests), with their scripts in Peers/.
    var peerTests: [Target.Dependency]? = nil
}

let providers: [ProviderSpec] = [
    ProviderSpec(name: "Simulator", dependencies: []),
    ProviderSpec(
        name: "Genesys",
        dependencies: [
            "MutewardenJSON", "MutewardenBayeux", "MutewardenBayeuxWebSocket", "MutewardenHTTP",
            "MutewardenSupervisor", "MutewardenWebSocket",
        ],
        testDependencies: ["MutewardenJSON"], testResources: [.copy("Fixtures")],
        peerTests: [
            "MutewardenJSON", "MutewardenDaemon", "MutewardenConfig", "MutewardenLogging", "MutewardenTesting",
            // The cross-platform tests: a GWS feed driving a Verba recorder.
            "MutewardenVerba", .product(name: "Logging", package: "swift-log"),
            // The report over a Genesys run in the private journald (GenesysReportTests).
            "MutewardenReport", .product(name: "Crypto", package: "swift-crypto"),
        ]),
    ProviderSpec(
        name: "ACS", dependencies: ["MutewardenJSON", "MutewardenHTTP", "MutewardenIngress", "MutewardenCallbackAuth", "MutewardenAzure"],
        testDependencies: ["MutewardenJSON", "MutewardenHTTP"],
        // Against a fake Call Automation (Peers/fake_acs.py: REST API, Entra tokens, signed callbacks).
        peerTests: [
            "MutewardenJSON", "MutewardenHTTP", "MutewardenLogging", "MutewardenTesting", "MutewardenDaemon", "MutewardenConfig",
            .product(name: "Logging", package: "swift-log"),
        ]),
    ProviderSpec(
        name: "Graph", dependencies: ["MutewardenJSON", "MutewardenHTTP", "MutewardenIngress", "MutewardenCallbackAuth", "MutewardenAzure"],
        testDependencies: ["MutewardenJSON", "MutewardenHTTP"],
        peerTests: [
            "MutewardenJSON", "MutewardenHTTP", "MutewardenDaemon", "MutewardenConfig", "MutewardenTesting", "MutewardenCallbackAuth",
            "MutewardenAzure", .product(name: "Logging", package: "swift-log"), .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "CryptoExtras", package: "swift-crypto"),
        ]),
    ProviderSpec(
        name: "Voicenter",
        dependencies: ["MutewardenJSON", "MutewardenHTTP", "MutewardenSupervisor", "MutewardenSocketIO", "MutewardenWebSocket"],
        testDependencies: ["MutewardenJSON", "MutewardenHTTP"], testResources: [.copy("Fixtures")],
        peerTests: [
            "MutewardenJSON", "MutewardenHTTP", "MutewardenLogging", "MutewardenSupervisor", "MutewardenTesting",
            "MutewardenDaemon", "MutewardenConfig", .product(name: "Logging", package: "swift-log"),
        ]),
    ProviderSpec(
        name: "Verba", dependencies: ["MutewardenHTTP"], testDependencies: ["MutewardenHTTP"],
        peerTests: [
            "MutewardenHTTP", "MutewardenLogging", "MutewardenTesting", "MutewardenDaemon", "MutewardenConfig",
            .product(name: "Logging", package: "swift-log"),
        ]),
]

func providerTargets(_ spec: ProviderSpec) -> [Target] {
    let module = "Mutewarden\(spec.name)"
    var targets: [Target] = [
        .target(
            name: module, dependencies: ["MutewardenModel", "MutewardenProviderKit"] + spec.dependencies,
            path: "Sources/Providers/\(spec.name)"),
        .testTarget(
            name: "\(module)Tests",
            dependencies: [.target(name: module), "MutewardenModel", "MutewardenProviderKit", "MutewardenConfig", "MutewardenTesting"]
                + spec.testDependencies,
            path: "Tests/Providers/\(spec.name)/Tests", resources: spec.testResources),
    ]
    if let peer = spec.peerTests {
        targets.append(
            .testTarget(
                name: "\(spec.name)PeerTests",
                dependencies: [.target(name: module), "MutewardenModel", "MutewardenProviderKit"] + peer,
                path: "Tests/Providers/\(spec.name)/PeerTests",
                // Not every provider's peer is a script: Verba's fake is in Swift.
                exclude: FileManager.default.fileExists(atPath: "\(Context.packageDirectory)/Tests/Providers/\(spec.name)/PeerTests/Peers")
                    ? ["Peers"] : []))
    }
    return targets
}

let package = Package(
    name: "mutewarden",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mutewarden", targets: ["mutewarden"]),
        .executable(name: "mutewarden-loadgen", targets: ["mutewarden-loadgen"]),
        // For the Benchmarks package, and for anyone embedding the engine.
        .library(name: "MutewardenModel", targets: ["MutewardenModel"]),
        .library(name: "MutewardenEngine", targets: ["MutewardenEngine"]),
        .library(name: "MutewardenConfig", targets: ["MutewardenConfig"]),
        .library(name: "MutewardenLogging", targets: ["MutewardenLogging"]),
        .library(name: "MutewardenJSON", targets: ["MutewardenJSON"]),
        .library(name: "MutewardenBayeux", targets: ["MutewardenBayeux"]),
        .library(name: "MutewardenHTTP", targets: ["MutewardenHTTP"]),
        .library(name: "MutewardenWebSocket", targets: ["MutewardenWebSocket"]),
        .library(name: "MutewardenIngress", targets: ["MutewardenIngress"]),
        .library(name: "MutewardenControl", targets: ["MutewardenControl"]),
        .library(name: "MutewardenSocketIO", targets: ["MutewardenSocketIO"]),
        .library(name: "MutewardenProviderKit", targets: ["MutewardenProviderKit"]),
        .library(name: "MutewardenCallbackAuth", targets: ["MutewardenCallbackAuth"]),
        .library(name: "MutewardenAzure", targets: ["MutewardenAzure"]),
        .library(name: "MutewardenReport", targets: ["MutewardenReport"]),
        // Test utilities, as swift-nio ships NIOTestUtils: peers, waits, sinks, log capture.
        .library(name: "MutewardenTesting", targets: ["MutewardenTesting"]),
    ] + providers.map { .library(name: "Mutewarden\($0.name)", targets: ["Mutewarden\($0.name)"]) },
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // HMAC-SHA256 and SHA-256 for request signing (never hand-written crypto).
        .package(url: "https://github.com/apple/swift-crypto", "4.0.0"..<"5.0.0"),
        // JWT and JWKS validation of the platforms' signed callbacks.
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        // The metrics registry and its Prometheus text exposition (docs/operations.md#metrics); it
        // brings swift-metrics' CoreMetrics, whose types it implements.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // MARK: C
        // C libraries, reached through the system's pkg-config files.
        .systemLibrary(
            name: "CCurl", path: "Sources/C/CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CLibWebSockets", path: "Sources/C/CLibWebSockets", pkgConfig: "libwebsockets",
            providers: [.apt(["libwebsockets-dev"])]),
        .systemLibrary(
            name: "CSystemd", path: "Sources/C/CSystemd", pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]),
        // Typed wrappers for what Swift cannot import: variadic C functions and macros.
        .target(
            name: "CMutewardenShims", dependencies: ["CCurl", "CLibWebSockets", "CSystemd"],
            path: "Sources/C/CMutewardenShims",
            // OpenSSL (which libwebsockets is built on) explains why a server certificate failed.
            linkerSettings: [.linkedLibrary("crypto")]),
        // The daemon's allocator, jemalloc with one arena (see startup.c). Only the `mutewarden`
        // executable depends on it, and no test target depends on that executable (tests run the
        // built binary), so test bundles keep the system's malloc and ThreadSanitizer's allocator.
        .target(
            name: "CMutewardenStartup", path: "Sources/C/CMutewardenStartup",
            linkerSettings: [.linkedLibrary("jemalloc")]),

        // MARK: Core
        // The contract between the engine and the providers: normalized calls, actions, policies,
        // and the few concurrency primitives everything shares (Mailbox, MinHeap, Locked).
        .target(name: "MutewardenModel", path: "Sources/Core/Model"),
        // Call tracking, policy windows and action dispatch. Pure Swift, no I/O, clock injected.
        .target(
            name: "MutewardenEngine", dependencies: ["MutewardenModel"], path: "Sources/Core/Engine",
            // The engine is single-threaded by construction (one owner, no escaping closures over
            // its state), so the runtime exclusivity checks on its class properties can only cost
            // (docs/performance.md).
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),

        // MARK: Transports
        // Connection supervision shared by every transport: connect, run, back off, reconnect.
        .target(name: "MutewardenSupervisor", dependencies: ["MutewardenModel"], path: "Sources/Transports/Supervisor"),
        // HTTP client on libcurl's multi interface, driven by one thread.
        .target(
            name: "MutewardenHTTP",
            dependencies: ["MutewardenModel", "MutewardenSupervisor", "CCurl", "CMutewardenShims"],
            path: "Sources/Transports/HTTP"),
        // WebSocket client on libwebsockets 4.1, one service thread per context.
        .target(
            name: "MutewardenWebSocket",
            dependencies: ["MutewardenModel", "MutewardenSupervisor", "CLibWebSockets", "CMutewardenShims"],
            path: "Sources/Transports/WebSocket"),
        // HTTP callback ingress on libwebsockets' server side: the daemon's one listener, for
        // platforms that deliver call events as HTTPS callbacks. Every request is authenticated
        // from its head before its body is read (docs/ingress.md).
        .target(
            name: "MutewardenIngress", dependencies: ["MutewardenModel", "CLibWebSockets", "CMutewardenShims"],
            path: "Sources/Transports/Ingress"),
        // The daemon's control socket (AF_UNIX, one request line, one JSON answer line) on a
        // thread of its own, with its peer check (SO_PEERCRED), and the client `mutewarden status` uses.
        .target(
            name: "MutewardenControl", dependencies: ["MutewardenModel", "CMutewardenShims"],
            path: "Sources/Transports/Control"),

        // MARK: Protocols
        // A small JSON value type with a fast UTF-8 parser: platform events arrive by the thousand.
        .target(name: "MutewardenJSON", path: "Sources/Protocols/JSON"),
        // Bayeux (CometD) client: handshake, connect, subscribe, advice; transport-agnostic.
        .target(
            name: "MutewardenBayeux", dependencies: ["MutewardenJSON", "MutewardenModel", "MutewardenSupervisor"],
            path: "Sources/Protocols/Bayeux"),
        // Bayeux's websocket connection type over the WebSocket client: one connection per session.
        .target(
            name: "MutewardenBayeuxWebSocket",
            dependencies: [
                "MutewardenBayeux", "MutewardenJSON", "MutewardenModel", "MutewardenSupervisor", "MutewardenWebSocket",
            ],
            path: "Sources/Protocols/BayeuxWebSocket"),
        // socket.io (Engine.IO v3 and v4) over single WebSocket connections: a packet codec, a pure
        // session state machine, and the client that drives one with the other. Reconnection is
        // the caller's, since only it knows whether an end means a new login.
        .target(
            name: "MutewardenSocketIO", dependencies: ["MutewardenJSON", "MutewardenModel", "MutewardenWebSocket"],
            path: "Sources/Protocols/SocketIO"),

        // Authentication of the platforms' HTTPS callbacks before their bodies are read: a bearer
        // JWT checked against the issuer's published signing keys (jwt-kit), or a shared secret in
        // the callback URL's query. Used by the ingress's authenticators (ACS, Graph).
        .target(
            name: "MutewardenCallbackAuth",
            dependencies: [
                "MutewardenModel", "MutewardenHTTP", "MutewardenIngress", "MutewardenJSON", "MutewardenProviderKit",
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            path: "Sources/Protocols/CallbackAuth"),
        // Microsoft's REST conventions that Azure Communication Services (and Graph) share: the
        // connection string and HMAC-SHA256 request signing, repeatability headers, Entra ID
        // client-credentials tokens, and CommunicationErrorResponse.
        .target(
            name: "MutewardenAzure",
            dependencies: [
                "MutewardenModel", "MutewardenHTTP", "MutewardenJSON", "MutewardenProviderKit",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Protocols/Azure"),

        // MARK: Providers
        // The provider API: settings and their reader, registry, context, shared resources with
        // typed keys, feed status, secrets. Providers depend on it and never on the configuration
        // loader (nor, through it, on the YAML library).
        .target(
            name: "MutewardenProviderKit",
            dependencies: ["MutewardenModel", "MutewardenSupervisor", "MutewardenHTTP", "MutewardenIngress"],
            path: "Sources/Providers/Kit"),

        // MARK: Runtime
        // YAML configuration: schema, diagnostics with file:line:column, secrets, drop-ins.
        .target(
            name: "MutewardenConfig",
            dependencies: [
                "MutewardenModel", "MutewardenProviderKit", "MutewardenIngress", .product(name: "Yams", package: "Yams"),
                // The configuration's digest in `config.loaded`.
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Runtime/Config"),
        // swift-log handlers (stderr, journald), audit records and PAN masking.
        .target(
            name: "MutewardenLogging",
            dependencies: ["MutewardenModel", "CSystemd", .product(name: "Logging", package: "swift-log")],
            path: "Sources/Runtime/Logging"),
        // The engine thread, action execution, reload by generations, state, signals. Knows the
        // provider kit, and no provider: the executable composes them.
        .target(
            name: "MutewardenDaemon",
            dependencies: [
                "MutewardenModel", "MutewardenEngine", "MutewardenConfig", "MutewardenLogging", "MutewardenProviderKit",
                "MutewardenHTTP", "MutewardenIngress", "CMutewardenShims", "CSystemd", "MutewardenControl",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/Runtime/Daemon"),

        // `mutewarden report`: the daemon's audit records read back (sd-journal, or a
        // `journalctl -o json` export) and turned into the evidence for a period, as text, JSON
        // or one HTML page. The aggregator is pure; the readers are its only I/O.
        .target(
            name: "MutewardenReport", dependencies: ["MutewardenModel", "MutewardenLogging", "MutewardenJSON", "CSystemd"],
            path: "Sources/Runtime/Report"),

        // MARK: CLI
        .executableTarget(
            name: "mutewarden",
            dependencies: [
                "MutewardenDaemon", "MutewardenConfig", "MutewardenLogging", "MutewardenProviderKit", "CMutewardenShims",
                "CMutewardenStartup", "MutewardenReport", "MutewardenControl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ] + providers.map { .target(name: "Mutewarden\($0.name)") },
            path: "Sources/CLI/mutewarden"),

        // End-to-end load: plays GWS (CometD over long-polling and WebSocket, the voice API) on one
        // libwebsockets server context, runs the real daemon against it, and measures event-to-action
        // latency, throughput and the daemon's CPU and memory (make bench, docs/performance.md). It
        // is here rather than in the Benchmarks package because EndToEndTests run it.
        .executableTarget(
            name: "mutewarden-loadgen", dependencies: ["CLibWebSockets", "CMutewardenShims", "MutewardenJSON"],
            path: "Benchmarks/LoadGenerator"),

        // MARK: Tests
        // The test kit (also a product): eventually, managed peer processes, free ports, recording
        // sinks, a test provider context, log capture, Python venvs, and a socket.io server (Peers/).
        .target(
            name: "MutewardenTesting",
            dependencies: [
                "MutewardenModel", "MutewardenProviderKit", "MutewardenLogging",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/MutewardenTesting", exclude: ["README.md", "Peers"]),

        .testTarget(name: "MutewardenModelTests", dependencies: ["MutewardenModel"]),
        .testTarget(name: "MutewardenEngineTests", dependencies: ["MutewardenEngine", "MutewardenModel"]),
        .testTarget(
            name: "MutewardenConfigTests",
            dependencies: [
                "MutewardenConfig", "MutewardenIngress", "MutewardenModel", "MutewardenProviderKit", "MutewardenTesting",
            ]),
        .testTarget(
            name: "MutewardenLoggingTests",
            dependencies: [
                "MutewardenLogging", "MutewardenModel", "MutewardenTesting", .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(name: "MutewardenJSONTests", dependencies: ["MutewardenJSON"]),
        .testTarget(
            name: "MutewardenBayeuxTests",
            dependencies: ["MutewardenBayeux", "MutewardenJSON", "MutewardenModel", "MutewardenTesting"]),
        .testTarget(
            name: "MutewardenSupervisorTests", dependencies: ["MutewardenSupervisor", "MutewardenModel", "MutewardenTesting"]),
        .testTarget(
            name: "MutewardenProviderKitTests",
            dependencies: ["MutewardenProviderKit", "MutewardenSupervisor", "MutewardenModel", "MutewardenTesting"]),
        // Peers/ holds the test servers, run with python3 from the source tree.
        .testTarget(
            name: "MutewardenHTTPTests",
            dependencies: ["MutewardenHTTP", "MutewardenModel", "MutewardenProviderKit", "MutewardenTesting"],
            exclude: ["Peers"]),
        .testTarget(
            name: "MutewardenWebSocketTests",
            dependencies: ["MutewardenWebSocket", "MutewardenModel", "MutewardenSupervisor", "MutewardenTesting"],
            exclude: ["Peers"]),
        // The ingress driven by real clients on 127.0.0.1: curl, the project's HTTP client, and
        // Python sockets for the abuse a well-behaved client never commits.
        .testTarget(
            name: "MutewardenIngressTests",
            dependencies: ["MutewardenIngress", "MutewardenHTTP", "MutewardenModel", "MutewardenTesting"],
            exclude: ["Peers"]),
        // The codec and the state machine without sockets, and the client against python-socketio
        // 5 (Engine.IO v4, Debian's) and 4.6 (v3, in a venv the tests make): the test kit's server.
        .testTarget(
            name: "MutewardenSocketIOTests",
            dependencies: [
                "MutewardenSocketIO", "MutewardenJSON", "MutewardenModel", "MutewardenWebSocket", "MutewardenTesting",
            ]),
        // JWT callbacks against signing keys served by a Python peer (Peers/) the tests start.
        .testTarget(
            name: "MutewardenCallbackAuthTests",
            dependencies: [
                "MutewardenCallbackAuth", "MutewardenHTTP", "MutewardenJSON", "MutewardenModel", "MutewardenProviderKit",
                "MutewardenTesting", .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            exclude: ["Peers"]),
        // ACS request signing against Microsoft's own Python SDK (from PyPI, in a venv the tests
        // make), and the Entra token source against a fake token endpoint (Peers/).
        .testTarget(
            name: "MutewardenAzureTests",
            dependencies: [
                "MutewardenAzure", "MutewardenHTTP", "MutewardenJSON", "MutewardenModel", "MutewardenProviderKit",
                "MutewardenTesting",
            ],
            exclude: ["Peers"]),
        .testTarget(
            name: "MutewardenDaemonTests",
            dependencies: [
                "MutewardenDaemon", "MutewardenHTTP", "MutewardenLogging", "MutewardenModel", "MutewardenProviderKit",
                "MutewardenConfig", "MutewardenSimulator", "MutewardenTesting", "MutewardenControl",
                .product(name: "Logging", package: "swift-log"), "MutewardenIngress",
            ]),
        // The report's aggregator and renderers without I/O, the export reader on made-up lines,
        // and the HTML page in headless Chromium (DevTools protocol over python3 websockets).
        .testTarget(
            name: "MutewardenReportTests",
            dependencies: ["MutewardenReport", "MutewardenModel", "MutewardenLogging", "MutewardenTesting"],
            exclude: ["Peers"]),
        // The binaries as an operator runs them, and the daemon under mutewarden-loadgen. They run
        // the built executables (swift test builds every product first) and link none of them.
        .testTarget(name: "EndToEndTests", dependencies: ["MutewardenTesting"]),
        // The systemd unit, the journal catalog and the journald backend against real systemd
        // tools and a private systemd-journald (root only; see PrivateJournal.swift).
        .testTarget(
            name: "SystemdTests",
            dependencies: [
                "MutewardenLogging", "MutewardenModel", "MutewardenTesting", .product(name: "Logging", package: "swift-log"),
                // The report over the private journal (ReportJournalTests), and the digest it checks.
                "MutewardenReport", .product(name: "Crypto", package: "swift-crypto"),
            ]),
    ] + providers.flatMap(providerTargets),
    swiftLanguageModes: [.v6]
)
