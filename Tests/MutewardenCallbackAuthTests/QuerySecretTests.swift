import MutewardenCallbackAuth
import MutewardenModel
import MutewardenProviderKit
import Testing

@Suite struct QuerySecretTests {
    let secret = Secret(reference: "credential:acs-callback-secret", value: "s3cr3t-Value_42")

    @Test func theRightSecretIsAcceptedAndAnyOtherRefused() async {
        let auth = QuerySecretAuthenticator(secret: secret)
        #expect(auth.validate(query: "secret=s3cr3t-Value_42").isAccepted)
        #expect(auth.validate(query: "a=1&secret=s3cr3t%2DValue_42&b=2").isAccepted)
        #expect(await auth.authenticate(CallbackRequestHead(method: "POST", path: "/acs", query: "secret=s3cr3t-Value_42")).isAccepted)
        let cases: [(String?, CallbackAuthRefusal)] = [
            (nil, .missing), ("", .missing), ("other=s3cr3t-Value_42", .missing), ("secret=", .missing), ("secret", .missing),
            ("secret=s3cr3t-Value_4", .wrongSecret), ("secret=s3cr3t-Value_42x", .wrongSecret), ("secret=S3cr3t-Value_42", .wrongSecret),
            ("secret=%zz", .malformed), ("secret=s3cr3t-Value_42&secret=s3cr3t-Value_42", .malformed),
        ]
        for (query, reason) in cases {
            let decision = auth.validate(query: query)
            #expect(decision.refusal == reason, "\(query ?? "nil")")
            #expect(!decision.description.contains(secret.reveal()))
        }
        #expect(!auth.description.contains(secret.reveal()))
    }

    @Test func theParameterNameIsConfigurable() {
        let auth = QuerySecretAuthenticator(parameterName: "mw-key", secret: secret)
        #expect(auth.validate(query: "mw-key=s3cr3t-Value_42").isAccepted)
        #expect(auth.validate(query: "secret=s3cr3t-Value_42").refusal == .missing)
    }

    @Test func constantTimeEqualityHandlesEveryLength() {
        #expect(ConstantTime.equals([], []))
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3, 4], [1, 2, 3]))
        #expect(!ConstantTime.equals([], [0]))
        #expect(!ConstantTime.equals([0], []))
        #expect(!ConstantTime.equals([1, 2, 4], [1, 2, 3]))
        // A provided value shorter than the expected one whose missing bytes would be zero.
        #expect(!ConstantTime.equals([0xFF], [0xFF, 0x00]))
    }
}
