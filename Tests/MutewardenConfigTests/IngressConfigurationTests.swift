import MutewardenConfig
import MutewardenIngress
import Testing

@Test func anIngressSectionDecodesEveryKey() throws {
    let yaml = """
        ingress:
          address: 0.0.0.0
          port: 9443
          tls:
            certificate: /etc/mutewarden/ingress.crt
            key: /etc/mutewarden/ingress.key
          max_body_bytes: 65536
          max_header_bytes: 4096
          max_connections: 64
          header_timeout: 5s
          body_timeout: 15s
          authentication_timeout: 3s
          handler_timeout: 20s
          refusal_record_interval: 2m

        """
    let ingress = try #require(try loader().load(yaml: yaml, file: "ingress.yaml").ingress)
    var expected = IngressConfiguration(
        address: "0.0.0.0", port: 9443, security: .tls(certificate: "/etc/mutewarden/ingress.crt", key: "/etc/mutewarden/ingress.key"))
    expected.maximumBodySize = 65536
    expected.maximumHeaderSize = 4096
    expected.maximumConnections = 64
    expected.headerTimeout = .seconds(5)
    expected.bodyTimeout = .seconds(15)
    expected.authenticationTimeout = .seconds(3)
    expected.handlerTimeout = .seconds(20)
    expected.refusalRecordInterval = .seconds(120)
    #expect(ingress == expected)
}

@Test func noIngressSectionMeansNoListener() throws {
    #expect(try loader().load(yaml: "feeds: {}\n", file: "min.yaml").ingress == nil)
}

@Test func plainHTTPIsAllowedOnLoopbackAndBehindAProxyOnly() throws {
    let loopback = try loader().load(yaml: "ingress:\n  port: 8080\n  tls: false\n", file: "a.yaml").ingress
    #expect(loopback?.security == .plain(behindProxy: false))
    #expect(loopback?.address == "127.0.0.1")
    let proxied = try loader().load(yaml: "ingress:\n  address: 10.0.0.5\n  tls: false\n  behind_proxy: true\n", file: "b.yaml").ingress
    #expect(proxied?.security == .plain(behindProxy: true))

    let exposed = diagnostics(of: "ingress:\n  address: 10.0.0.5\n  tls: false\n").map(\.description)
    #expect(exposed.count == 1)
    #expect(exposed.first?.hasPrefix("test.yaml:2:12: error: 'ingress' in the top level: plain HTTP on 10.0.0.5") == true)
}

@Test func anIngressWithoutTLSSettingsIsRefused() {
    let missing = diagnostics(of: "ingress:\n  port: 8443\n").map(\.description)
    #expect(missing.count == 1)
    #expect(missing.first?.contains("needs 'tls' with a 'certificate' and a 'key', or 'tls: false'") == true)
    let noKey = diagnostics(of: "ingress:\n  tls:\n    certificate: /c.pem\n").map(\.description)
    #expect(noKey.count == 1)
    #expect(noKey.first?.hasPrefix("test.yaml:3:5") == true)
    let badPort = diagnostics(of: "ingress:\n  port: 70000\n  tls: false\n").map(\.description)
    #expect(badPort.first?.hasPrefix("test.yaml:2:9: error: 'port'") == true)
    let unknown = diagnostics(of: "ingress:\n  tls: false\n  listen_on: 1\n").map(\.description)
    #expect(unknown.first?.contains("listen_on") == true)
}
