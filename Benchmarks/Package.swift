// swift-tools-version:6.0
import PackageDescription

// The benchmarks, a package of their own so that building the product builds none of them
// (`make bench-*` build them here; figures in docs/performance.md). They use the root package's
// libraries as any client would. The load generator (`mutewarden-loadgen`) is in the root package,
// because the end-to-end tests run it.
let package = Package(
    name: "mutewarden-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "mutewarden", path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", "4.0.0"..<"5.0.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
    ],
    targets: [
        // Interposes malloc and friends to count heap allocations; only mutewarden-bench links it.
        .target(name: "CAllocationCounter"),
        // The engine alone: events per second and allocations per event (make bench-engine).
        .executableTarget(
            name: "mutewarden-bench",
            dependencies: [
                "CAllocationCounter", .product(name: "MutewardenModel", package: "mutewarden"),
                .product(name: "MutewardenEngine", package: "mutewarden"),
            ]),
        // GWS feed throughput: a recorded stream through the Bayeux client and the GWS mapping
        // into the engine, with no network (make bench-gws).
        .executableTarget(
            name: "mutewarden-gws-bench",
            dependencies: [
                .product(name: "MutewardenBayeux", package: "mutewarden"),
                .product(name: "MutewardenGenesys", package: "mutewarden"),
                .product(name: "MutewardenJSON", package: "mutewarden"),
                .product(name: "MutewardenEngine", package: "mutewarden"),
                .product(name: "MutewardenModel", package: "mutewarden"),
            ]),
        // socket.io feed throughput: a recorded stream of Voicenter-shaped frames through the packet
        // codec and the session state machine, with no network (make bench-socketio).
        .executableTarget(
            name: "mutewarden-socketio-bench",
            dependencies: [
                .product(name: "MutewardenSocketIO", package: "mutewarden"),
                .product(name: "MutewardenVoicenter", package: "mutewarden"),
                .product(name: "MutewardenEngine", package: "mutewarden"),
                .product(name: "MutewardenJSON", package: "mutewarden"),
                .product(name: "MutewardenModel", package: "mutewarden"),
            ]),
        // The journal backend: records per second into a private journald, and the handlers' cost.
        .executableTarget(
            name: "mutewarden-journal-bench",
            dependencies: [
                .product(name: "MutewardenLogging", package: "mutewarden"),
                .product(name: "MutewardenModel", package: "mutewarden"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // `mutewarden report` over a month of audit records: a generator of the records (as a
        // `journalctl -o json` export and in journald's export format), and the report's reader,
        // aggregator and renderers timed over them (make bench-report).
        .executableTarget(
            name: "mutewarden-report-bench",
            dependencies: [
                .product(name: "MutewardenReport", package: "mutewarden"),
                .product(name: "MutewardenLogging", package: "mutewarden"),
                .product(name: "MutewardenModel", package: "mutewarden"),
            ]),
        // WebSocket client throughput against a local flooding server.
        .executableTarget(
            name: "mutewarden-ws-bench",
            dependencies: [
                .product(name: "MutewardenWebSocket", package: "mutewarden"),
                .product(name: "MutewardenModel", package: "mutewarden"),
            ]),
        // HTTP client throughput: the Swift layer, and the same requests on libcurl in plain C
        // (plus the C keep-alive server both are measured against), so the overhead is a ratio.
        .executableTarget(
            name: "mutewarden-http-bench",
            dependencies: [
                .product(name: "MutewardenHTTP", package: "mutewarden"),
                .product(name: "MutewardenModel", package: "mutewarden"),
            ]),
        // The JWT check of one callback (RS256, keys cached), and jwt-kit's verification alone.
        .executableTarget(
            name: "mutewarden-jwt-bench",
            dependencies: [
                .product(name: "MutewardenCallbackAuth", package: "mutewarden"),
                .product(name: "MutewardenModel", package: "mutewarden"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]),
        .executableTarget(name: "mutewarden-http-cbench", linkerSettings: [.linkedLibrary("curl")]),
        // The callback ingress: authenticated POSTs per second through it into a handler (a bearer
        // token, the JWT check, or the whole acs feed), driven by mutewarden-http-cbench's keep-alive
        // client from another core (make bench-ingress).
        .executableTarget(
            name: "mutewarden-ingress-bench",
            dependencies: [
                .product(name: "MutewardenIngress", package: "mutewarden"),
                .product(name: "MutewardenModel", package: "mutewarden"),
                .product(name: "MutewardenCallbackAuth", package: "mutewarden"),
                .product(name: "MutewardenACS", package: "mutewarden"),
                .product(name: "MutewardenConfig", package: "mutewarden"),
                .product(name: "MutewardenProviderKit", package: "mutewarden"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
