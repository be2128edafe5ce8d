// mutewarden-loadgen: plays Genesys Web Services (or Voicenter, --platform voicenter) for the
// daemon and measures how long after a card capture starts (or ends) the pause and mute requests
// (or their undos) reach the platform.
//
//   swift build -c release --product mutewarden-loadgen --product mutewarden
//   taskset -c 0 .build/release/mutewarden-loadgen --daemon-cpu 1 --rate 5000 --output run.json
//
// See docs/performance.md: the traffic, what is measured, and `make bench`.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

signal(SIGPIPE, SIG_IGN)
// Interrupted, the generator takes its daemon down with it rather than leave it polling.
for interruption in [SIGINT, SIGTERM] {
    signal(interruption) { number in
        let pid = DaemonProcess.running.load(ordering: .relaxed)
        if pid > 0 { kill(pid, SIGTERM) }
        _exit(128 + number)
    }
}
let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
let report = LoadRun(options: options).run()
if !options.quiet { print(report.summary) }
if let output = options.output {
    do {
        try report.json().write(to: URL(fileURLWithPath: output))
    } catch {
        fail("cannot write \(output): \(error)")
    }
}
exit(report.error == nil ? 0 : 1)
