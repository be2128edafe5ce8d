import MutewardenModel
import MutewardenProviderKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import MutewardenHTTP

private func mapped(_ code: Int, _ detail: String = "x", errno: Int32 = 0, connected: Bool = true) -> HTTPError {
    HTTPError.fromCurl(
        code: code, detail: detail, osErrno: errno, connected: connected, httpStatus: nil, abortedForSize: false,
        cap: 1024, timeout: .seconds(2), connectTimeout: .seconds(1))
}

/// The CURLcode numbers are libcurl's stable ABI (curl.h); each row is one operator-facing class.
@Test(arguments: [
    (6, Int32(0), HTTPError.Kind.dnsFailure, ActionFailure.Disposition.retryable),
    (7, ECONNREFUSED, .connectionRefused, .retryable),
    (7, EHOSTUNREACH, .connectFailed, .retryable),
    (60, 0, .tlsVerificationFailed, .permanent),
    (51, 0, .tlsVerificationFailed, .permanent),
    (77, 0, .tlsConfiguration, .permanent),
    (58, 0, .tlsConfiguration, .permanent),
    (35, 0, .tlsHandshakeFailed, .retryable),
    (56, 0, .connectionReset, .retryable),
    (52, 0, .connectionReset, .retryable),
    (55, 0, .connectionReset, .retryable),
    (18, 0, .connectionReset, .retryable),
    (63, 0, .responseTooLarge, .permanent),
    (47, 0, .tooManyRedirects, .permanent),
    (5, 0, .proxyFailure, .retryable),
    (97, 0, .proxyFailure, .retryable),
    (3, 0, .invalidRequest, .permanent),
    (16, 0, .protocolError, .retryable),
    (8, 0, .protocolError, .retryable),
    (999, 0, .transportFailure, .retryable),
])
func curlCodesMapToOperatorClasses(code: Int, osErrno: Int32, kind: HTTPError.Kind, disposition: ActionFailure.Disposition) {
    let error = mapped(code, errno: osErrno)
    #expect(error.kind == kind)
    #expect(error.disposition == disposition)
    #expect(error.curlCode == code)
    #expect(error.actionFailure("mute call 7").code == "curl \(code)")
}

@Test func timeoutsSayWhichPhaseRanOut() {
    #expect(mapped(28, connected: false).kind == .connectTimeout)
    #expect(mapped(28, connected: true).kind == .timeout)
    #expect(mapped(28, connected: true).description.contains("within 2s"))
}

@Test func aTLSAlertAfterTheHandshakeIsATLSProblem() {
    let error = mapped(56, "OpenSSL SSL_read: error:0A00045C:SSL routines::tlsv13 alert certificate required")
    #expect(error.kind == .tlsHandshakeFailed)
}

@Test func writeAbortAtTheCapIsResponseTooLarge() {
    let error = HTTPError.fromCurl(
        code: 23, detail: "Failure writing output", osErrno: 0, connected: true, httpStatus: 200, abortedForSize: true,
        cap: 1 << 20, timeout: .seconds(1), connectTimeout: .seconds(1))
    #expect(error.kind == .responseTooLarge)
    #expect(error.httpStatus == 200)
    #expect(error.disposition == .permanent)
}

@Test(
    arguments: [
        (200, nil), (204, nil), (302, .permanent), (400, .permanent), (403, .permanent), (404, .permanent),
        (408, .retryable), (429, .retryable), (500, .retryable), (501, .permanent), (502, .retryable),
        (503, .retryable), (504, .retryable),
    ] as [(Int, ActionFailure.Disposition?)])
func statusesAreResultsWithAGenericDisposition(status: Int, disposition: ActionFailure.Disposition?) {
    let response = HTTPResponse(status: status)
    #expect(response.disposition == disposition)
    let result = Result<HTTPResponse, HTTPError>.success(response).actionResult("pause recording")
    if let disposition {
        #expect(result == .failed(ActionFailure(disposition, "pause recording: the server answered HTTP \(status)", code: "http \(status)")))
    } else {
        #expect(result == .accepted)
    }
}

@Test func proxyEnvironmentRulesAreExplicit() {
    let environment = [
        "HTTP_PROXY": "http://httpoxy:1",  // ignored: a CGI request can set it
        "https_proxy": "http://lower:3128",
        "HTTPS_PROXY": "http://upper:3128",
        "ALL_PROXY": "socks5h://all:1080",
        "NO_PROXY": "localhost,.internal",
    ]
    let resolved = ProxySettings.resolve(.environment) { environment[$0] }
    #expect(resolved.https == "http://lower:3128")
    #expect(resolved.httpsSource == "https_proxy")
    #expect(resolved.http == "socks5h://all:1080")
    #expect(resolved.httpSource == "ALL_PROXY")
    #expect(resolved.noProxy == "localhost,.internal")
    #expect(resolved.proxy(forURL: "HTTPS://gws.example/") == "http://lower:3128")
    #expect(resolved.proxy(forURL: "http://gws.example/") == "socks5h://all:1080")

    let empty = ProxySettings.resolve(.environment) { ["https_proxy": "", "http_proxy": ""][$0] }
    #expect(empty.https == nil && empty.http == nil)
    #expect(ProxySettings.resolve(.none) { environment[$0] } == ProxySettings())
    let explicit = ProxySettings.resolve(.url("http://p:8080", noProxy: "10.0.0.0/8")) { environment[$0] }
    #expect(explicit.https == "http://p:8080" && explicit.http == "http://p:8080" && explicit.noProxy == "10.0.0.0/8")
}

@Test func deadlineHeapPopsInOrderAndStaysBounded() {
    var heap = DeadlineHeap()
    for (index, at) in [50, 10, 40, 20, 30].enumerated() { heap.push(at: Int64(at), id: UInt64(index)) }
    #expect(heap.popDue(now: 5) == nil)
    var popped: [UInt64] = []
    while let id = heap.popDue(now: 100) { popped.append(id) }
    #expect(popped == [1, 3, 4, 2, 0])
    for id in 0..<1000 { heap.push(at: Int64(id), id: UInt64(id)) }
    heap.compact(keeping: { $0 < 3 }, liveCount: 3)
    #expect(heap.count == 3)
}

@Test func hostAdmissionCountsBySchemeAndAuthority() {
    #expect(HostAdmission.host(of: "http://127.0.0.1:8080/api/v2/me/calls/1") == "http://127.0.0.1:8080")
    #expect(HostAdmission.host(of: "HTTPS://GWS.example.com?x=1") == "https://gws.example.com")
    #expect(HostAdmission.host(of: "https://[::1]:8443#frag") == "https://[::1]:8443")
    #expect(HostAdmission.host(of: "http://h") == "http://h")
}
