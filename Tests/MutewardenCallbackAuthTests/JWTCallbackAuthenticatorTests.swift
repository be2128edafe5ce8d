import Foundation
import JWTKit
import MutewardenCallbackAuth
import MutewardenHTTP
import MutewardenModel
import MutewardenTesting
import Testing

/// The JWT check against keys served over HTTP by a real server (Peers/keys_peer.py), fetched by
/// the daemon's HTTP client through OpenID discovery.
@Suite struct JWTCallbackAuthenticatorTests {
    func authenticator(_ peer: KeysPeer, clock: ManualClock = ManualClock(), requiredClaims: [String: String] = [:]) -> JWTCallbackAuthenticator {
        JWTCallbackAuthenticator(
            settings: JWTCallbackSettings(
                openIDConfigurationURL: peer.configurationURL, issuers: [KeysPeer.issuer], audiences: [KeysPeer.audience],
                requiredClaims: requiredClaims),
            http: peer.http, clock: clock)
    }

    @Test func aGoodTokenIsAcceptedAndNamesItsIssuer() async throws {
        let keys = try await TestKey.all()
        try await withKeysPeer(publishing: [keys[0]]) { peer in
            let auth = authenticator(peer)
            let token = try await keys[0].sign(validClaims())
            let decision = await auth.validate(authorizationHeader: "Bearer \(token)")
            guard case .accepted(let identity) = decision else {
                Issue.record("refused: \(decision)")
                return
            }
            #expect(identity.issuer == KeysPeer.issuer)
            #expect(identity.audience == KeysPeer.audience)
            #expect(identity.subject == "acs-callbacks")
            #expect(identity.keyID == keys[0].kid)
            // Through the ingress's interface, the header's name in any case.
            let head = CallbackRequestHead(method: "POST", path: "/acs", headers: [("authorization", "bearer  \(token) ")], peer: "127.0.0.1")
            #expect(await auth.authenticate(head).isAccepted)
            #expect(try await peer.requests("/openid-configuration") == 1)
            #expect(try await peer.requests("/jwks") == 1)
        }
    }

    @Test func eachBadTokenIsRefusedForItsReasonWithoutEchoingIt() async throws {
        let keys = try await TestKey.all()
        try await withKeysPeer(publishing: [keys[0]]) { peer in
            let auth = authenticator(peer)
            var expired = validClaims()
            expired.expiration = nowSeconds() - 120
            var notYet = validClaims()
            notYet.notBefore = nowSeconds() + 600
            var noExpiry = validClaims()
            noExpiry.expiration = nil
            let good = try await keys[0].sign(validClaims())
            var tamperedParts = good.split(separator: ".").map(String.init)
            tamperedParts[1] = TestKey.base64URL(
                try JSONEncoder().encode(
                    CallbackClaims(
                        issuer: KeysPeer.issuer, audiences: [KeysPeer.audience], expiration: nowSeconds() + 86_400)))
            let hmac = JWTKeyCollection()
            await hmac.add(
                hmac: HMACKey(from: String(repeating: "shared-key-", count: 8)), digestAlgorithm: .sha256, kid: JWKIdentifier(string: keys[0].kid))
            let cases: [(String?, CallbackAuthRefusal)] = [
                (nil, .missing),
                ("", .missing),
                ("Basic dXNlcjpwYXNz", .malformed),
                ("Bearer", .missing),
                ("Bearer not-a-jwt", .malformed),
                ("Bearer a.b.c", .malformed),
                ("Bearer " + String(repeating: "x", count: 20_000), .malformed),
                ("Bearer " + (try await keys[0].sign(expired)), .expired),
                ("Bearer " + (try await keys[0].sign(notYet)), .notYetValid),
                ("Bearer " + (try await keys[0].sign(noExpiry)), .malformed),
                ("Bearer " + (try await keys[0].sign(validClaims(audience: "another-resource"))), .wrongAudience),
                ("Bearer " + (try await keys[0].sign(validClaims(issuer: "https://login.attacker.example"))), .wrongIssuer),
                // Signed by a key the issuer does not publish, under the published key's id: a forgery.
                ("Bearer " + (try await keys[1].sign(validClaims(), kid: keys[0].kid)), .badSignature),
                ("Bearer " + tamperedParts.joined(separator: "."), .badSignature),
                ("Bearer " + (try await hmac.sign(validClaims(), kid: JWKIdentifier(string: keys[0].kid))), .disallowedAlgorithm),
            ]
            for (header, reason) in cases {
                let decision = await auth.validate(authorizationHeader: header)
                #expect(decision.refusal == reason, "\(header.map { String($0.prefix(40)) } ?? "nil"): \(decision)")
                if let header, header.count > 12 {
                    let token = String(header.dropFirst(7))
                    #expect(!decision.description.contains(token))
                    for part in token.split(separator: ".") where part.count > 8 { #expect(!decision.description.contains(part)) }
                }
            }
            // One fetch served every one of them.
            #expect(try await peer.requests("/jwks") == 1)
        }
    }

    @Test func theSkewAllowsASlightlyExpiredToken() async throws {
        let keys = try await TestKey.all()
        try await withKeysPeer(publishing: [keys[0]]) { peer in
            let auth = authenticator(peer)
            var claims = validClaims()
            claims.expiration = nowSeconds() - 20
            claims.notBefore = nowSeconds() + 20
            let signed = "Bearer " + (try await keys[0].sign(claims))
            #expect(await auth.validate(authorizationHeader: signed).isAccepted)
        }
    }

    @Test func anExtraClaimMustMatch() async throws {
        let keys = try await TestKey.all()
        try await withKeysPeer(publishing: [keys[0]]) { peer in
            let auth = authenticator(peer, requiredClaims: ["tid": "tenant-1"])
            var claims = validClaims()
            var signed = "Bearer " + (try await keys[0].sign(claims))
            #expect(await auth.validate(authorizationHeader: signed).refusal == .wrongClaim)
            claims.strings["tid"] = "tenant-2"
            signed = "Bearer " + (try await keys[0].sign(claims))
            #expect(await auth.validate(authorizationHeader: signed).refusal == .wrongClaim)
            claims.strings["tid"] = "tenant-1"
            signed = "Bearer " + (try await keys[0].sign(claims))
            #expect(await auth.validate(authorizationHeader: signed).isAccepted)
        }
    }

    @Test func aRotatedKeyIsFetchedOnceWithinTheRateLimit() async throws {
        let keys = try await TestKey.all()
        try await withKeysPeer(publishing: [keys[0]]) { peer in
            let clock = ManualClock()
            let auth = authenticator(peer, clock: clock)
            let signed = "Bearer " + (try await keys[0].sign(validClaims()))
            #expect(await auth.validate(authorizationHeader: signed).isAccepted)
            #expect(try await peer.requests("/jwks") == 1)

            // The issuer rotates: key 1 is published, and a callback signed with it arrives at once.
            try peer.publish([keys[0], keys[1]])
            let rotated = "Bearer " + (try await keys[1].sign(validClaims()))
            // Within five minutes of the last fetch, no new one: refused as an unknown key.
            clock.advance(.seconds(60))
            #expect(await auth.validate(authorizationHeader: rotated).refusal == .unknownKey)
            #expect(try await peer.requests("/jwks") == 1)
            // Past the interval, the unknown key id makes one fetch, and the token is accepted.
            clock.advance(.seconds(300))
            #expect(await auth.validate(authorizationHeader: rotated).isAccepted)
            #expect(try await peer.requests("/jwks") == 2)
            #expect(await auth.validate(authorizationHeader: rotated).isAccepted)
            // Another unknown key right after: rate-limited again.
            let another = "Bearer " + (try await keys[2].sign(validClaims()))
            #expect(await auth.validate(authorizationHeader: another).refusal == .unknownKey)
            #expect(try await peer.requests("/jwks") == 2)
            #expect(await auth.keyCache.fetches == 2)
        }
    }

    @Test func aFloodOfUnknownKeyIDsMakesAtMostOneFetch() async throws {
        let keys = try await TestKey.all()
        try await withKeysPeer(publishing: [keys[0]]) { peer in
            let auth = authenticator(peer)
            // The first fetch happens for the first of them, concurrently with the others: they
            // all wait for it, and none starts another.
            let tokens = try await (0..<50).asyncMap { index in "Bearer " + (try await keys[3].sign(validClaims(), kid: "made-up-\(index)")) }
            let refusals = await withTaskGroup(of: CallbackAuthRefusal?.self) { group in
                for token in tokens { group.addTask { await auth.validate(authorizationHeader: token).refusal } }
                return await group.reduce(into: [CallbackAuthRefusal?]()) { $0.append($1) }
            }
            #expect(refusals.allSatisfy { $0 == .unknownKey })
            #expect(try await peer.requests("/jwks") == 1)
            #expect(await auth.keyCache.fetches == 1)
        }
    }

    @Test func concurrentValidationsOfANewKeyWaitForOneRefresh() async throws {
        let keys = try await TestKey.all()
        try await withKeysPeer(publishing: [keys[0], keys[1]]) { peer in
            let auth = authenticator(peer)
            let token = "Bearer " + (try await keys[1].sign(validClaims()))
            let accepted = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<20 { group.addTask { await auth.validate(authorizationHeader: token).isAccepted } }
                return await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(accepted == 20)
            #expect(try await peer.requests("/jwks") == 1)
        }
    }

    @Test func unreachableKeysRefuseAsUnavailableAndAreRetriedLater() async throws {
        let keys = try await TestKey.all()
        try await withKeysPeer(publishing: [keys[0]]) { peer in
            let clock = ManualClock()
            let settings = JWTCallbackSettings(
                openIDConfigurationURL: "http://127.0.0.1:\(peer.port)/missing-configuration", issuers: [KeysPeer.issuer],
                audiences: [KeysPeer.audience])
            let auth = JWTCallbackAuthenticator(settings: settings, http: peer.http, clock: clock)
            let token = "Bearer " + (try await keys[0].sign(validClaims()))
            let decision = await auth.validate(authorizationHeader: token)
            #expect(decision.refusal == .keysUnavailable)
            #expect(decision.refusal?.httpStatus == 503)
            #expect(await auth.validate(authorizationHeader: token).refusal == .keysUnavailable)
            #expect(try await peer.requests("/missing-configuration") == 1)
            clock.advance(.seconds(11))
            _ = await auth.validate(authorizationHeader: token)
            #expect(try await peer.requests("/missing-configuration") == 2)
        }
    }

    @Test func keysOlderThanTheRefreshIntervalAreRefreshedInTheBackground() async throws {
        let keys = try await TestKey.all()
        try await withKeysPeer(publishing: [keys[0]]) { peer in
            let clock = ManualClock()
            let auth = authenticator(peer, clock: clock)
            let token = "Bearer " + (try await keys[0].sign(validClaims()))
            #expect(await auth.validate(authorizationHeader: token).isAccepted)
            // The issuer withdraws key 0; a day later the next callback still passes (old keys
            // serve while the refresh runs), and the refresh then drops the withdrawn key.
            try peer.publish([keys[1]])
            clock.advance(.seconds(86_401))
            #expect(await auth.validate(authorizationHeader: token).isAccepted)
            try await eventually("the background refresh") { try await peer.requests("/jwks") == 2 ? true : nil }
            try await eventually("the refreshed key set") { await auth.keyCache.keySet?.keyIDs == [keys[1].kid] ? true : nil }
        }
    }

    @Test func aKeySetSkipsKeysItCannotUse() async throws {
        let keys = try await TestKey.all()
        let document: [String: Any] = [
            "keys": [
                ["kty": "oct", "kid": "symmetric", "k": "c2hhcmVk"],
                ["kty": "RSA", "use": "enc", "kid": "encryption"] as [String: String],
                ["kty": "RSA", "kid": "no-modulus", "e": "AQAB"],
                keys[0].jwk,
            ]
        ]
        let set = try await SigningKeySet.parse(Array(try JSONSerialization.data(withJSONObject: document)), fetchedAt: .zero)
        #expect(set.keyIDs == [keys[0].kid])
        #expect(set.skipped == 3)
        await #expect(throws: SigningKeyError.self) { try await SigningKeySet.parse(Array(#"{"keys":[]}"#.utf8), fetchedAt: .zero) }
        await #expect(throws: SigningKeyError.self) { try await SigningKeySet.parse(Array("nope".utf8), fetchedAt: .zero) }
    }

    @Test func settingsRefuseForbiddenAlgorithmsAndInsecureURLs() {
        let settings = JWTCallbackSettings(
            openIDConfigurationURL: "http://example.com/openid", issuers: ["i"], audiences: ["a"], algorithms: ["RS256", "HS256", "none"])
        #expect(settings.algorithms == ["RS256"])
        #expect(settings.problem() != nil)
        #expect(JWTCallbackSettings.acs(resourceID: "r").problem() == nil)
        #expect(JWTCallbackSettings.graph(appID: "app", tenant: "t").requiredClaims == ["tid": "t"])
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
