import CSystemd
import MutewardenModel

/// The daemon's side of systemd's notify protocol (`Type=notify`): READY, STATUS, WATCHDOG,
/// RELOADING and STOPPING. Without `$NOTIFY_SOCKET` (not under systemd) every call does nothing.
public struct SystemdNotifier: Sendable {
    public init() {}

    public func notify(_ state: String) {
        _ = state.withCString { sd_notify(0, $0) }
    }

    /// Half of `WatchdogSec=`, when systemd expects pings from this process: a stuck engine loop
    /// then misses two pings in a row before systemd restarts it.
    public var watchdogPingInterval: Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(microseconds / 2))
    }
}
