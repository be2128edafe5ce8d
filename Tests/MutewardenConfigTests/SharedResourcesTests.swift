import MutewardenConfig
import Synchronization
import Testing

private final class Login: Sendable {
    let number: Int
    init(_ number: Int) { self.number = number }
}

@Suite struct SharedResourcesTests {
    /// A feed and a target asking for one name get one object, made once; a daemon's context
    /// shares nothing with another's.
    @Test func oneNameIsOneObjectPerContext() throws {
        let made = Atomic<Int>(0)
        func make() -> Login { Login(made.add(1, ordering: .relaxed).newValue) }
        let context = ProviderContext(report: { _, _, _ in })
        let feeds = try context.shared.resource("session a", make: make)
        let targets = try context.shared.resource("session a", make: make)
        #expect(feeds === targets && made.load(ordering: .relaxed) == 1)
        #expect(try context.shared.resource("session b", make: make).number == 2)
        let another = ProviderContext(report: { _, _, _ in })
        #expect(try another.shared.resource("session a", make: make).number == 3)
    }

    /// What the daemon provides is what the providers get; one name used for two types is a bug
    /// reported as an error, not a crash.
    @Test func aProvidedObjectIsFoundAndAMismatchIsAnError() throws {
        let shared = SharedResources()
        let transport = Login(7)
        shared.provide("http-transport", transport)
        #expect(try shared.resource("http-transport") { Login(0) } === transport)
        #expect(throws: SharedResourceError.self) { try shared.resource("http-transport") { "a string" } }
    }
}
