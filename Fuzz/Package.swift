// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for every parser the platforms (and the operator's configuration) feed: a
// package of its own, because everything it builds is compiled with `-sanitize=fuzzer`
// (`make fuzz`, `make fuzz-smoke`; docs/fuzzing.md). Each target is an executable whose main
// hands over to libFuzzer's driver (LLVMFuzzerRunDriver) with its LLVMFuzzerTestOneInput.
func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: "fuzz-\(name)", dependencies: ["FuzzDriver"] + products.map { .product(name: $0, package: "mutewarden") })
}

let package = Package(
    name: "mutewarden-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "mutewarden", path: "..")],
    targets: [
        // Hands each target's function to libFuzzer's driver.
        .target(name: "FuzzDriver"),
        // The JSON parser every platform message goes through, and its writer.
        fuzzTarget("json", ["MutewardenJSON"]),
        // The parsed-but-not-built document against the tree parser: the same accept/reject,
        // errors and values.
        fuzzTarget("json-document", ["MutewardenJSON"]),
        // Bayeux replies: advice (the 1e300 trap), error strings, message shapes.
        fuzzTarget("bayeux", ["MutewardenBayeux", "MutewardenJSON"]),
        // GWS call notifications and call listings into normalized updates.
        fuzzTarget("gws", ["MutewardenGenesys", "MutewardenJSON", "MutewardenModel"]),
        // Voicenter: real-time payloads and sessions through the feed's logic, login and
        // MuteUnmuteCalls answers.
        fuzzTarget("voicenter", ["MutewardenVoicenter", "MutewardenJSON", "MutewardenModel"]),
        // Verba: the XML reader, MuteRecording and RequestToken answers.
        fuzzTarget("verba", ["MutewardenVerba", "MutewardenModel"]),
        // The configuration loader: YAML, schema, conditions, secrets references, providers.
        fuzzTarget(
            "config",
            [
                "MutewardenConfig", "MutewardenProviderKit", "MutewardenGenesys", "MutewardenSimulator", "MutewardenVoicenter",
                "MutewardenVerba",
            ]),
        // socket.io frames through the packet codec and both versions' session state machines.
        fuzzTarget("socketio", ["MutewardenSocketIO", "MutewardenModel"]),
        // Microsoft's non-feed input: ACS error bodies, Entra token answers, connection strings,
        // callback queries with a shared secret.
        fuzzTarget("azure", ["MutewardenAzure", "MutewardenCallbackAuth", "MutewardenJSON", "MutewardenProviderKit"]),
        // Microsoft Graph: call notifications through the feed's logic, and the calls API's answers.
        fuzzTarget("graph", ["MutewardenGraph", "MutewardenModel"]),
        // ACS Call Automation callbacks: CloudEvents batches through the feed's logic.
        fuzzTarget("acs", ["MutewardenACS", "MutewardenJSON", "MutewardenModel"]),
        // PAN masking: never crashes, and what it returns holds no PAN.
        fuzzTarget("masking", ["MutewardenLogging"]),
        // `mutewarden report --from`: export lines through the record parser, the aggregator and
        // the renderers.
        fuzzTarget("report", ["MutewardenReport"]),
        // The control socket's request line (local clients only, but a parser all the same).
        fuzzTarget("control", ["MutewardenControl"]),
    ],
    swiftLanguageModes: [.v6]
)
