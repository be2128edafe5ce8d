import Foundation
import MutewardenConfig
import MutewardenProviderKit
import MutewardenModel
import Testing

/// Stand-ins for the built-in providers, with the keys the documentation's example uses: the
/// example must stay a configuration the loader accepts.
private struct StubSettings: FeedSettings, TargetSettings {
    var summary: String { "stub" }
    var confirmsByEvent: Bool { false }
    func makeFeed(name: String, context: ProviderContext) throws -> any CallFeed { TestFeed(name: name) }
    func makeTarget(name: String, context: ProviderContext) throws -> any ActionTarget {
        TestTarget(descriptor: .init(name: name, confirmsByEvent: false))
    }
}

private let builtInStubs = ProviderRegistry(
    feeds: [
        FeedProvider(type: "simulator") {
            _ = $0.double("call_rate", in: 0.001...100_000); return StubSettings()
        }
    ],
    targets: [
        TargetProvider(type: "log") {
            _ = $0.double("fail_ratio", in: 0...1); return StubSettings()
        }
    ])

/// The ```yaml blocks of docs/configuration.md that start with a `# /etc/mutewarden/...` line.
private func documentedFiles() throws -> [(path: String, text: String)] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let markdown = try String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
    return markdown.components(separatedBy: "```yaml\n").dropFirst().compactMap { block in
        let text = block.components(separatedBy: "```").first ?? ""
        guard let first = text.split(separator: "\n").first, first.hasPrefix("# /etc/mutewarden/") else { return nil }
        return (String(first.dropFirst(2)), text)
    }
}

@Test func theDocumentedExampleLoads() throws {
    let files = try documentedFiles()
    #expect(files.map(\.path) == ["/etc/mutewarden/mutewarden.yaml", "/etc/mutewarden/conf.d/20-eu.yaml"])
    try withTemporaryDirectory { directory in
        for file in files {
            try write(file.text, to: directory + file.path.replacingOccurrences(of: "/etc/mutewarden", with: ""))
        }
        let configuration = try ConfigurationLoader(registry: builtInStubs, environment: [:])
            .load(path: directory + "/mutewarden.yaml")
        #expect(configuration.engine.policies.map(\.name) == ["card-capture", "agent-mute-trial", "eu-card"])
        #expect(configuration.logging.level == .debug)
        #expect(configuration.logging.attributeAllowlist == ["PCI_STAGE"])
    }
}
