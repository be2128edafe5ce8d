import FuzzDriver
import MutewardenBayeux
import MutewardenJSON

/// A reply as a server may send it: every message's advice is laid over the current one (and
/// must stay within its bounds), every error string is read.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let reply = try? JSONValue.parse(UnsafeBufferPointer(start: data, count: size)) else { return 0 }
    var advice = BayeuxAdvice()
    for message in reply.array ?? [reply] {
        advice = advice.updated(with: message["advice"]).advice
        guard BayeuxAdvice.timeoutRange.contains(advice.timeout), BayeuxAdvice.intervalRange.contains(advice.interval) else {
            fatalError("advice out of its bounds: \(advice)")
        }
        if let error = message["error"]?.string {
            let parsed = BayeuxErrorString(parsing: error)
            _ = (parsed.description, parsed.meansUnknownClient, parsed.meansAuthenticationFailure)
        }
    }
    return 0
}

runFuzzer(fuzz)
