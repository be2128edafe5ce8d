import FuzzDriver
import MutewardenReport

/// Any bytes as a `journalctl -o json` export: every line is a record, something else, or
/// malformed, never a trap; the aggregator and every renderer take whatever the lines held.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let period = ReportPeriod(since: 0, until: .max)
    var aggregator = ReportAggregator(period: period, source: .init(kind: "export", path: nil))
    ExportReader().read(text: bytes, into: &aggregator, period: period)
    let counted = aggregator.source
    let report = aggregator.finish()
    if counted.records + counted.malformed + counted.skipped + counted.outsidePeriod == 0, bytes.contains(UInt8(ascii: "{")),
        bytes.allSatisfy({ $0 != UInt8(ascii: "\n") })
    {
        fatalError("a line with an object was not counted")
    }
    _ = ReportTextRenderer.render(report)
    _ = ReportJSONRenderer.render(report, generated: 0)
    _ = ReportHTMLRenderer.render(report, generated: 0)
    return 0
}

runFuzzer(fuzz)
