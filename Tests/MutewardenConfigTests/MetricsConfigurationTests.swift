import MutewardenConfig
import MutewardenIngress
import Testing

@Test func noMetricsSectionOrNotEnabledMeansNoListener() throws {
    #expect(try loader().load(yaml: "feeds: {}\n", file: "min.yaml").metrics == nil)
    #expect(try loader().load(yaml: "metrics:\n  port: 9100\n", file: "a.yaml").metrics == nil)
    #expect(try loader().load(yaml: "metrics:\n  enabled: false\n", file: "b.yaml").metrics == nil)
}

@Test func enabledMetricsListenOnLoopbackByDefault() throws {
    let metrics = try #require(try loader().load(yaml: "metrics:\n  enabled: true\n", file: "m.yaml").metrics)
    #expect(metrics == .loopback())
    #expect(metrics.listener.address == "127.0.0.1")
    #expect(metrics.listener.port == 9464)
    #expect(metrics.listener.security == .plain(behindProxy: false))
    #expect(metrics.path == "/metrics")
}

@Test func aMetricsSectionDecodesEveryKey() throws {
    let yaml = """
        metrics:
          enabled: true
          address: 0.0.0.0
          port: 9100
          path: /internal/metrics
          tls:
            certificate: /etc/mutewarden/metrics.crt
            key: /etc/mutewarden/metrics.key

        """
    let metrics = try #require(try loader().load(yaml: yaml, file: "metrics.yaml").metrics)
    #expect(
        metrics
            == MetricsConfiguration(
                listener: MetricsConfiguration.listenerDefaults(
                    address: "0.0.0.0", port: 9100,
                    security: .tls(certificate: "/etc/mutewarden/metrics.crt", key: "/etc/mutewarden/metrics.key")),
                path: "/internal/metrics"))
    let proxied = try loader().load(yaml: "metrics:\n  enabled: true\n  address: 10.0.0.5\n  behind_proxy: true\n", file: "p.yaml")
    #expect(proxied.metrics?.listener.security == .plain(behindProxy: true))
}

@Test func badMetricsSettingsAreReportedWithTheirPosition() {
    let exposed = diagnostics(of: "metrics:\n  enabled: true\n  address: 10.0.0.5\n").map(\.description)
    #expect(exposed.count == 1)
    #expect(exposed.first?.hasPrefix("test.yaml:3:12: error: 'metrics' in the top level: plain HTTP on 10.0.0.5") == true)
    let badPort = diagnostics(of: "metrics:\n  enabled: true\n  port: 0\n").map(\.description)
    #expect(badPort.first?.hasPrefix("test.yaml:3:9: error: 'port'") == true)
    for path in ["metrics", "/healthz", "/a?b", "/a b", "/" + String(repeating: "a", count: 300)] {
        let bad = diagnostics(of: "metrics:\n  enabled: true\n  path: '\(path)'\n").map(\.description)
        #expect(bad.count == 1, "\(path)")
        #expect(bad.first?.hasPrefix("test.yaml:3:9: error: 'path' in 'metrics'") == true, "\(bad)")
    }
    let notBool = diagnostics(of: "metrics:\n  enabled: yes please\n").map(\.description)
    #expect(notBool.first?.hasPrefix("test.yaml:2:12: error: 'enabled'") == true, "\(notBool)")
    let unknown = diagnostics(of: "metrics:\n  enabled: true\n  listen: 1\n").map(\.description)
    #expect(unknown.first?.contains("listen") == true)
    let proxyWithTLS = diagnostics(of: "metrics:\n  enabled: true\n  behind_proxy: true\n  tls:\n    certificate: /c\n    key: /k\n")
        .map(\.description)
    #expect(proxyWithTLS.first?.contains("'behind_proxy'") == true)
}
