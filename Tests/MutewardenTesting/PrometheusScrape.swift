import Foundation

/// One scrape of a Prometheus endpoint, fetched and parsed by the reference Python client
/// (Debian's python3-prometheus-client, `text_string_to_metric_families`): what Prometheus's own
/// parsing would reject fails here too, rather than passing a hand-written reader.
public struct PrometheusScrape: Sendable, Decodable {
    public struct Sample: Sendable, Decodable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public struct Family: Sendable, Decodable {
        /// As the parser names it: a counter's family drops its samples' `_total`.
        public var name: String
        public var type: String
        public var samples: [Sample]
    }

    public var status: Int
    public var contentType: String
    public var text: String
    public var families: [Family]

    public func family(_ name: String) -> Family? { families.first { $0.name == name } }

    /// The sum of the samples called `sample` whose labels include `labels`.
    public func value(_ sample: String, _ labels: [String: String] = [:]) -> Double {
        families.flatMap(\.samples).filter { candidate in
            candidate.name == sample && labels.allSatisfy { key, value in candidate.labels[key] == value }
        }.reduce(0) { $0 + $1.value }
    }

    /// Fetches `url` with Python's urllib and parses the text exposition. Throws when the fetch or
    /// the parse fails, with Python's message.
    public static func fetch(_ url: String) async throws -> PrometheusScrape {
        let result = try await runProgram(try locateTool("python3"), ["-c", script, url], timeout: .seconds(30))
        guard result.status == 0, let data = result.stdout.data(using: .utf8) else {
            throw TestFailure("scraping \(url) failed: \(result.stderr.suffix(2000))")
        }
        return try JSONDecoder().decode(PrometheusScrape.self, from: data)
    }

    /// A raw request with Python's http.client: the status answered, or 0 when the connection was
    /// closed without one.
    public static func status(port: Int, method: String, path: String, body: String? = nil, headers: [String: String] = [:])
        async throws -> Int
    {
        let request = try String(decoding: JSONEncoder().encode(RawRequest(method: method, path: path, body: body, headers: headers)), as: UTF8.self)
        let result = try await runProgram(try locateTool("python3"), ["-c", rawScript, String(port), request], timeout: .seconds(30))
        guard result.status == 0, let status = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestFailure("request \(method) \(path) failed: \(result.stderr.suffix(2000))")
        }
        return status
    }

    private struct RawRequest: Encodable {
        var method: String
        var path: String
        var body: String?
        var headers: [String: String]
    }

    private static let script = """
        import json, math, sys, urllib.request
        from prometheus_client.parser import text_string_to_metric_families
        with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
            status = response.status
            content_type = response.headers.get("Content-Type", "")
            text = response.read().decode("utf-8")
        families = []
        for family in text_string_to_metric_families(text):
            samples = [{"name": s.name, "labels": s.labels, "value": s.value if math.isfinite(s.value) else -1.0}
                       for s in family.samples]
            families.append({"name": family.name, "type": family.type, "samples": samples})
        print(json.dumps({"status": status, "contentType": content_type, "text": text, "families": families}))
        """

    private static let rawScript = """
        import http.client, json, sys
        request = json.loads(sys.argv[2])
        connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
        try:
            body = request["body"].encode() if request.get("body") is not None else None
            connection.request(request["method"], request["path"], body=body, headers=request["headers"])
            print(connection.getresponse().status)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            print(0)
        """
}
