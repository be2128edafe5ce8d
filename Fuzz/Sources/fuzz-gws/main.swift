import FuzzDriver
import MutewardenGenesys
import MutewardenJSON
import MutewardenModel

/// A GWS notification, or a call listing: mapped to normalized updates or refused as malformed,
/// never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let value = try? JSONValue.parse(UnsafeBufferPointer(start: data, count: size)) else { return 0 }
    if case .update(let update, _)? = try? GWSCallEvents.map(notification: value, feed: "gws") {
        _ = (update.ids.primary, update.attributes?.count)
    }
    let listing = GWSCallEvents.mapCallList(value, feed: "gws", agentExtension: "3001")
    _ = (listing.calls.count, listing.skipped.count)
    return 0
}

runFuzzer(fuzz)
