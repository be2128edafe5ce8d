import Foundation
import MutewardenModel
import MutewardenReport
import MutewardenTesting
import Testing

/// Where this package's sources are, and where tests keep what they leave for a person to look
/// at: `.build/test-artifacts/report/` (kept between runs, out of git with the rest of `.build`).
enum ReportPaths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let schema = root + "/docs/report.schema.json"
    static let peers = root + "/Tests/MutewardenReportTests/Peers"

    static func artifacts() throws -> String {
        let path = root + "/.build/test-artifacts/report"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// Checks `json` against docs/report.schema.json with python3-jsonschema (Draft 2020-12).
func validateAgainstSchema(_ json: String, name: String) async throws {
    let file = try ReportPaths.artifacts() + "/\(name).json"
    try json.write(toFile: file, atomically: true, encoding: .utf8)
    let check = """
        import json, sys, jsonschema
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))), key=str)
        for error in errors: print(list(error.absolute_path), error.message)
        sys.exit(1 if errors else 0)
        """
    let result = try await runProgram(try locateTool("python3"), ["-c", check, ReportPaths.schema, file])
    #expect(result.status == 0, "the report does not match docs/report.schema.json: \(result.output)")
}

/// A report with something in every section: failures, a fallback, a recovery, outages, a reload.
func busyScript() -> Script {
    var script = Script()
    script.add(0, .daemonStarted, .notice, [.result: "started"])
    script.add(1, .configurationLoaded, .notice, [.result: "loaded", .digest: "sha256:" + String(repeating: "0f", count: 32)])
    script.add(2, .feedUp, .notice, [.feed: "sim", .result: "up"])
    for index in 0..<40 {
        let call = "call-\(index)"
        let start = Int64(index) * 60_000 + 1000
        script.open(start, call)
        script.attempt(start + 1, call)
        if index % 10 == 7 {
            script.add(
                start + 1000, .actionFailed, .critical,
                Script.window(call).overlaid(with: [.target: "mute-api", .action: "mute", .error: "timed out"]))
            if index == 17 {
                script.attempt(start + 1001, call, target: "backup")
                script.confirm(start + 1200, call, target: "backup")
                script.close(start + 30_000, call)
            } else {
                script.close(start + 20_000, call, result: "call-ended", unprotected: true)
            }
        } else {
            script.confirm(start + Int64(20 + index * 13), call)
            script.close(start + 30_000, call, result: index % 3 == 0 ? "call-ended" : "stopped")
        }
    }
    script.add(700_000, .feedDown, .error, [.feed: "sim", .result: "down", .reason: "connection lost", .calls: "3"])
    script.add(760_000, .feedUp, .notice, [.feed: "sim", .result: "up"])
    script.add(760_050, .feedUp, .notice, [.feed: "sim", .result: "resynced", .calls: "2"])
    script.add(1_500_000, .configurationLoaded, .notice, [.result: "reloaded", .digest: "sha256:" + String(repeating: "1e", count: 32)])
    script.add(2_000_000, .feedDown, .error, [.feed: "gws", .result: "down", .reason: "timeout", .calls: "4"])
    return script
}

@Suite struct RenderedReportTests {
    @Test func jsonMatchesTheSchema() async throws {
        let report = busyScript().report()
        try await validateAgainstSchema(ReportJSONRenderer.render(report, generated: Script.base), name: "busy")
        try await validateAgainstSchema(ReportJSONRenderer.render(Script().report(), generated: Script.base), name: "empty")
    }

    /// The page in a real browser: it loads with no console error and no request beyond itself,
    /// and its screenshot and print are kept in `.build/test-artifacts/report/`.
    @Test func htmlOpensInHeadlessChromiumWithNoErrorAndNoRequest() async throws {
        let chromium = try locateTool("chromium")
        let artifacts = try ReportPaths.artifacts()
        let page = artifacts + "/report.html"
        let shot = artifacts + "/report.png"
        let pdf = artifacts + "/report.pdf"
        try? FileManager.default.removeItem(atPath: shot)
        try ReportHTMLRenderer.render(busyScript().report(), generated: Script.base).write(toFile: page, atomically: true, encoding: .utf8)
        let result = try await runProgram(
            try locateTool("python3"), [ReportPaths.peers + "/render_page.py", chromium, page, shot, pdf], timeout: .seconds(90))
        try #require(result.status == 0, "render_page.py failed: \(result.output)")
        let line = try #require(result.stdout.split(separator: "\n").last.map(String.init))
        let findings = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(findings["loaded"] as? Bool == true)
        #expect((findings["console_errors"] as? [String])?.isEmpty == true, "console: \(findings["console_errors"] ?? "")")
        #expect((findings["exceptions"] as? [String])?.isEmpty == true, "exceptions: \(findings["exceptions"] ?? "")")
        #expect((findings["log_errors"] as? [String])?.isEmpty == true, "log: \(findings["log_errors"] ?? "")")
        #expect((findings["requests"] as? [String])?.isEmpty == true, "requests: \(findings["requests"] ?? "")")
        // The timeline and the histogram are drawn.
        #expect((findings["title_and_svgs"] as? String)?.hasSuffix("|2") == true, "\(findings["title_and_svgs"] ?? "")")
        let size = (try? FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0
        #expect(size > 10_000, "screenshot \(shot) is \(size) bytes")
        print("report page screenshot: \(shot); printed: \(pdf)")
    }

    @Test func htmlIsSelfContained() {
        let html = ReportHTMLRenderer.render(busyScript().report(), generated: Script.base)
        for forbidden in ["<script", "<link", "src=", "@import", "url(", "href=\"http"] {
            #expect(!html.contains(forbidden), "\(forbidden)")
        }
        #expect(html.contains("@media print"))
    }
}
