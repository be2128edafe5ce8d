import FuzzDriver
import MutewardenModel
import MutewardenVerba

/// Verba's answers: the bytes as an XML document, as a MuteRecording answer under several HTTP
/// statuses, and as a RequestToken answer. Read or refused, never a trap; what reaches an audit
/// record is bounded and free of control characters, and only code="0" is accepted.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let root = try? VerbaXML.parse(bytes) { checkTree(root, depth: 1) }
    let answer = VerbaAnswer.read(bytes)
    for text in [answer?.code, answer?.type, answer?.errorMessage, answer?.errorDescription].compactMap({ $0 }) { checkShown(text) }
    for status in [200, 401, 404, 503] {
        let outcome = VerbaAPI.classify(httpStatus: status, body: bytes, operation: "op")
        switch outcome {
        case .accepted:
            precondition(status == 200 && answer?.isSuccess == true, "accepted without code 0 in a 2xx answer")
        case .failed(let failure), .unauthorized(let failure):
            checkShown(failure.message, limit: 600)
            if let code = failure.code { checkShown(code) }
        }
    }
    if case .success(let token) = VerbaAPI.token(httpStatus: 200, body: bytes) {
        precondition(!token.isEmpty && token.utf8.count <= 4096, "an unusable token")
        precondition(token.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F }, "a token that cannot go in a query as read")
    }
    return 0
}

private func checkTree(_ element: VerbaXMLElement, depth: Int) {
    precondition(depth <= VerbaXML.maximumDepth + 1, "a tree deeper than the bound")
    precondition(!element.name.isEmpty, "an element without a name")
    for child in element.children { checkTree(child, depth: depth + 1) }
}

private func checkShown(_ text: String, limit: Int = 201) {
    precondition(text.unicodeScalars.count <= limit, "platform text longer than its bound")
    precondition(!text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "a control character in a record")
}

runFuzzer(fuzz)
