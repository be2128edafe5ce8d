import MutewardenModel

/// How a provider reads its settings: one mapping of the configuration (a feed's or a target's keys
/// besides `type`), whatever the file format behind it.
///
/// The configuration loader implements it over YAML and keeps the file:line:column of every value,
/// so a provider never imports the YAML library and every error it reports points into the file.
/// Each accessor records the key as known, reports a missing or invalid value itself, and returns
/// `nil`, so a decoder reads on and the operator sees every error in one run. Keys that no accessor
/// asked for are reported as unknown afterwards: a typo is an error, not a silently applied default.
///
/// A reader lives for one synchronous decode and is not thread-safe.
public protocol SettingsReader: AnyObject {
    /// A scalar as text. Numbers and booleans are accepted as written (`1234`, `true`).
    func string(_ key: String) -> String?
    /// Like ``string(_:)``, reporting the key as missing when it is absent.
    func requiredString(_ key: String) -> String?
    func int(_ key: String, in range: ClosedRange<Int>?) -> Int?
    func double(_ key: String, in range: ClosedRange<Double>?) -> Double?
    func bool(_ key: String) -> Bool?
    /// A duration such as `250ms`, `30s`, `5m` or `1h`.
    func duration(_ key: String) -> Duration?
    /// A duration that must be greater than zero: timeouts and limits, where zero would disable a
    /// protection.
    func positiveDuration(_ key: String) -> Duration?
    /// A list of scalars; a lone scalar is reported, not promoted.
    func stringList(_ key: String) -> [String]?
    /// A credential: a literal, or `${env:NAME}`, `${file:/path}`, `${credential:NAME}` resolved now.
    func secret(_ key: String) -> Secret?
    func requiredSecret(_ key: String) -> Secret?
    /// A nested mapping, read with the same rules.
    func settings(_ key: String) -> (any SettingsReader)?
    /// A list of mappings, such as a provider's list of servers.
    func settingsList(_ key: String) -> [any SettingsReader]?
    /// One of the given names; the error lists them all.
    func choice(_ key: String, among names: [String]) -> String?
    /// Reports a problem at the key's value, or at the mapping when the key is absent or nil.
    func error(_ message: String, key: String?)
}

extension SettingsReader {
    public func int(_ key: String) -> Int? { int(key, in: nil) }
    public func double(_ key: String) -> Double? { double(key, in: nil) }
    public func error(_ message: String) { error(message, key: nil) }

    /// The `tls` mapping of a provider that speaks HTTPS: `ca_file`, `client_certificate`,
    /// `client_key`, `client_key_password` (a secret) and `insecure`; nil when it is absent.
    public func tlsOptions(_ key: String = "tls") -> TLSOptions? {
        guard let reader = settings(key) else { return nil }
        return TLSOptions(
            caBundlePath: reader.string("ca_file"), clientCertificatePath: reader.string("client_certificate"),
            clientKeyPath: reader.string("client_key"), clientKeyPassword: reader.secret("client_key_password")?.reveal(),
            insecure: reader.bool("insecure") ?? false)
    }

    /// One of an enumeration's raw values; the error lists them all.
    public func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) -> T?
    where T.RawValue == String {
        choice(key, among: T.allCases.map(\.rawValue)).flatMap(T.init(rawValue:))
    }
}
