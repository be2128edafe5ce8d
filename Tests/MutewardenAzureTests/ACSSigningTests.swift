import Foundation
import MutewardenAzure
import MutewardenHTTP
import MutewardenJSON
import MutewardenProviderKit
import MutewardenTesting
import Testing

@Suite struct ACSSigningTests {
    static let key = Data((0..<32).map { UInt8($0 &* 7 &+ 3) }).base64EncodedString()
    static let peers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers").path

    struct Case: Sendable {
        var method: HTTPMethod
        var endpoint: String
        var path: String
        var body: String?
        var date: String
    }

    static let cases: [Case] = [
        Case(
            method: .post, endpoint: "https://contoso.communication.azure.com",
            path: "/calling/callConnections/411f0b00-3ac1-4dcb-8c2b-7dc5f3d5a4b1/participants:mute?api-version=2024-09-15",
            body:
                #"{"targetParticipants":[{"kind":"communicationUser","communicationUser":{"id":"8:acs:1b5cc06b-f352-4571-b1e6-d9b259b7c776_00000000-0000-0000-0000-000000000001"}}],"operationContext":"mute participant"}"#,
            date: "Tue, 25 Jan 2022 17:34:52 GMT"),
        Case(
            method: .post, endpoint: "https://contoso.communication.azure.com",
            path: "/calling/recordings/eyJQbGF0Zm9ybUVuZHBvaW50SWQi:pause?api-version=2024-09-15",
            body: nil, date: "Sun, 06 Nov 1994 08:49:37 GMT"),
        Case(
            method: .post, endpoint: "https://contoso.communication.azure.com", path: "/calling/recordings/abc:resume?api-version=2024-09-15",
            body: "", date: "Wed, 01 May 2024 00:00:00 GMT"),
        Case(
            method: .get, endpoint: "https://contoso.communication.azure.com",
            path: "/calling/callConnections/c%C3%A9-42/participants?api-version=2024-09-15&maxpagesize=10", body: nil,
            date: "Fri, 31 Dec 1999 23:59:59 GMT"),
        Case(
            method: .delete, endpoint: "https://contoso.communication.azure.com", path: "/calling/recordings/r-1?api-version=2024-09-15",
            body: nil, date: "Mon, 29 Feb 2016 12:00:00 GMT"),
        // Non-ASCII in the body (UTF-8 hashed and sent), and an endpoint with a port.
        Case(
            method: .post, endpoint: "https://127.0.0.1:8443", path: "/calling/callConnections/x/participants:mute?api-version=2024-09-15",
            body: #"{"operationContext":"Zoë — paiement 💳 ✓"}"#, date: "Thu, 01 Jan 1970 00:00:00 GMT"),
        Case(method: .patch, endpoint: "https://contoso.communication.azure.com", path: "/", body: "{}", date: "Sat, 02 Mar 2024 09:05:07 GMT"),
    ]

    /// The oracle: Microsoft's Python SDK (azure-communication-callautomation, in a venv from
    /// PyPI) signs the same requests with the same key and date. No Python or no venv fails.
    @Test func theSignatureIsTheOneMicrosoftsSDKComputes() async throws {
        let python = try await PythonEnvironment.interpreter(
            name: "azure-callautomation", requirements: ["azure-communication-callautomation==1.6.0", "azure-core==1.41.0"])
        let input = JSONValue.array(
            Self.cases.map { item in
                .object([
                    ("method", .string(item.method.rawValue)), ("url", .string(item.endpoint + item.path)),
                    ("body", item.body.map { .string($0) } ?? .null), ("key", .string(Self.key)), ("date", .string(item.date)),
                    ("endpoint", .string(item.endpoint)),
                ])
            }
        ).serialized
        let directory = try TemporaryDirectory("mutewarden-acs-oracle")
        try input.write(toFile: directory.appending("cases.json"), atomically: true, encoding: .utf8)
        let result = try await runProgram(
            "/bin/sh", ["-c", "\"$0\" \"$1\" < \"$2\"", python, Self.peers + "/acs_hmac_oracle.py", directory.appending("cases.json")],
            timeout: .seconds(120))
        try #require(result.status == 0, "the oracle failed: \(result.output)")
        let expected = try #require(try JSONValue.parse(result.stdout).array)
        try #require(expected.count == Self.cases.count)

        let signer = try ACSRequestSigner(accessKey: Secret(reference: "test", value: Self.key))
        for (item, oracle) in zip(Self.cases, expected) {
            let signature = try signer.signature(
                method: item.method, url: item.endpoint + item.path, body: Array((item.body ?? "").utf8), date: item.date)
            let mine = Dictionary(uniqueKeysWithValues: signature.headers.map { ($0.name, $0.value) })
            for name in ["x-ms-date", "x-ms-content-sha256", "x-ms-return-client-request-id", "Authorization"] {
                #expect(mine[name] == oracle[name]?.string, "\(item.method) \(item.path): \(name)")
            }
        }
    }

    @Test func signingARequestReplacesEarlierSignatureHeaders() throws {
        let signer = try ACSRequestSigner(accessKey: Secret(reference: "test", value: Self.key))
        let request = HTTPRequest(
            .post, "https://contoso.communication.azure.com/calling/recordings/r:pause?api-version=2024-09-15",
            headers: [HTTPHeader("Content-Type", "application/json")], text: "{}")
        let once = try signer.sign(request, wallClock: 1_700_000_000_000_000_000)
        let twice = try signer.sign(once, wallClock: 1_700_000_060_000_000_000)
        #expect(twice.headers.count == once.headers.count)
        #expect(twice.headers.first { $0.name == "x-ms-date" }?.value == "Tue, 14 Nov 2023 22:14:20 GMT")
        #expect(twice.headers.first { $0.name == "Authorization" }?.isRedacted == true)
        #expect(!"\(twice)".contains("Signature="))
        #expect(!"\(signer)".contains(Self.key))
        #expect(!String(reflecting: signer).contains(Self.key))
    }

    @Test func httpDatesAreIMFFixdates() {
        #expect(HTTPDate.format(wallClockNanoseconds: 784_111_777_000_000_000) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(wallClockNanoseconds: 0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(wallClockNanoseconds: 1_456_747_200_999_999_999) == "Mon, 29 Feb 2016 12:00:00 GMT")
    }

    @Test func connectionStringsAreParsedWithClearErrors() throws {
        let parsed = try ACSConnectionString(
            parsing: Secret(
                reference: "credential:acs", value: "endpoint=https://contoso.communication.azure.com/;accesskey=\(Self.key)"))
        #expect(parsed.endpoint == "https://contoso.communication.azure.com")
        #expect(parsed.host == "contoso.communication.azure.com")
        #expect(parsed.accessKey.reveal() == Self.key)
        #expect(!"\(parsed)".contains(Self.key))
        let spaced = try ACSConnectionString(
            parsing: Secret(reference: "x", value: " AccessKey=\(Self.key) ; Endpoint=http://127.0.0.1:9000// ;"))
        #expect(spaced.endpoint == "http://127.0.0.1:9000")
        #expect(spaced.host == "127.0.0.1:9000")

        let bad: [(String, String)] = [
            ("", "no endpoint"),
            ("accesskey=\(Self.key)", "no endpoint"),
            ("endpoint=https://contoso.communication.azure.com/", "no accesskey"),
            ("endpoint=https://c.example;accesskey=\(Self.key);accesskey=\(Self.key)", "accesskey twice"),
            ("endpoint=https://c.example;accesskey=\(Self.key);sharedkey=\(Self.key)", "unknown part 'sharedkey'"),
            ("endpoint=https://c.example;accesskey=not base64!", "not base64"),
            ("endpoint=contoso.communication.azure.com;accesskey=\(Self.key)", "https:// URL"),
            ("endpoint=http://contoso.communication.azure.com;accesskey=\(Self.key)", "loopback only"),
            ("endpoint=https://c.example/path;accesskey=\(Self.key)", "no path"),
            ("endpoint=https://c.example;\(Self.key)", "unknown part (expected"),
            ("endpoint=https://c.example;accesskey", "without '='"),
        ]
        for (text, message) in bad {
            do {
                _ = try ACSConnectionString(parsing: Secret(reference: "credential:acs", value: text))
                Issue.record("accepted: \(message)")
            } catch {
                #expect(error.message.contains(message), "\(error.message)")
                for start in stride(from: 0, to: Self.key.count - 8, by: 4) {
                    let piece = Self.key.dropFirst(start).prefix(8).lowercased()
                    #expect(!error.message.lowercased().contains(piece), "\(error.message)")
                }
            }
        }
    }
}
