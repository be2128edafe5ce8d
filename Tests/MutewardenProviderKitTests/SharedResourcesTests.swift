import MutewardenProviderKit
import MutewardenTesting
import Synchronization
import Testing

private final class Login: ClosableResource {
    let number: Int
    let closed = Atomic<Bool>(false)
    init(_ number: Int) { self.number = number }
    func close() { closed.store(true, ordering: .relaxed) }
}

private struct Identity: Hashable, Sendable {
    var server: String
    var password: Secret
}

private func key(_ server: String, password: String = "p") -> ResourceKey<Login> {
    ResourceKey(kind: "login", label: server, identity: Identity(server: server, password: Secret(reference: "inline", value: password)))
}

@Suite struct SharedResourcesTests {
    /// A feed and a target asking for one key get one object, made once; a daemon's context
    /// shares nothing with another's.
    @Test func oneKeyIsOneObjectPerContext() throws {
        let made = Atomic<Int>(0)
        func make() -> Login { Login(made.add(1, ordering: .relaxed).newValue) }
        let context = TestProviderContext().context
        let feeds = try context.owned(by: "feed").resource(key("a"), make: make)
        let targets = try context.owned(by: "target").resource(key("a"), make: make)
        #expect(feeds === targets && made.load(ordering: .relaxed) == 1)
        #expect(try context.resource(key("b"), make: make).number == 2)
        let another = TestProviderContext().context
        #expect(try another.resource(key("a"), make: make).number == 3)
    }

    /// The identity is compared by value, secrets included: a rotated password is another login.
    /// The key's description never shows it.
    @Test func aChangedSecretIsAnotherResourceAndIsNeverPrinted() throws {
        let shared = SharedResources()
        let old = try shared.resource(key("a", password: "old"), owner: "feed #1") { Login(1) }
        let new = try shared.resource(key("a", password: "new"), owner: "feed #2") { Login(2) }
        #expect(old !== new)
        #expect(!"\(key("a", password: "hunter2"))".contains("hunter2"))
        #expect(!shared.labels.joined().contains("old"))
    }

    /// Resources no owner of the running configuration claims are closed; the others and what the
    /// daemon provided stay.
    @Test func unclaimedResourcesAreClosedAndClaimedOnesKept() throws {
        let shared = SharedResources()
        let transport = Login(0)
        let transportKey = ResourceKey<Login>(kind: "transport", label: "daemon", identity: "t")
        shared.provide(transportKey, transport)
        let kept = try shared.resource(key("kept"), owner: "feed a #1") { Login(1) }
        let dropped = try shared.resource(key("dropped"), owner: "target b #1") { Login(2) }
        _ = try shared.resource(key("kept"), owner: "target b #1") { Login(3) }
        shared.retainClaims(of: ["feed a #1"])
        #expect(shared.closeUnclaimed() == ["login dropped"])
        let droppedClosed = dropped.closed.load(ordering: .relaxed)
        let keptClosed = kept.closed.load(ordering: .relaxed)
        let transportClosed = transport.closed.load(ordering: .relaxed)
        #expect(droppedClosed && !keptClosed && !transportClosed)
        #expect(try shared.resource(transportKey, owner: "x") { Login(9) } === transport)
    }

    /// Keys are typed: the same kind and identity for two value types are two resources, not a
    /// crash or a wrong cast.
    @Test func keysAreTyped() throws {
        let shared = SharedResources()
        let login = try shared.resource(ResourceKey<Login>(kind: "k", label: "l", identity: 1), owner: "o") { Login(1) }
        let text = try shared.resource(ResourceKey<String>(kind: "k", label: "l", identity: 1), owner: "o") { "text" }
        #expect(login.number == 1 && text == "text")
    }

    /// A provider rebuilt at a reload (generation 2) gets a new object even for an equal key, so
    /// every setting it was made from takes effect; what the daemon provided is shared by all.
    @Test func resourcesAreSharedWithinAGenerationOnly() throws {
        let shared = SharedResources()
        let transportKey = ResourceKey<Login>(kind: "transport", label: "daemon", identity: "t")
        shared.provide(transportKey, Login(0))
        let first = try shared.resource(key("a"), owner: "feed #1", generation: 1) { Login(1) }
        let again = try shared.resource(key("a"), owner: "target #1", generation: 1) { Login(2) }
        let rebuilt = try shared.resource(key("a"), owner: "feed #2", generation: 2) { Login(3) }
        #expect(first === again && rebuilt !== first)
        #expect(try shared.resource(transportKey, owner: "feed #2", generation: 2) { Login(9) }.number == 0)
    }
}
