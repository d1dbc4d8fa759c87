import Foundation
import Testing
import WeftAPI
import WeftSite

@Suite("basic auth", .timeLimit(.minutes(10)))
struct BasicAuthVerifierTests {
    let verifier = BasicAuthVerifier(users: [
        .init(user: "admin", password: "N0tSecure-Ch@ngeMe"), .init(user: "ops", password: "a:b"),
    ])

    func header(_ credentials: String) -> String {
        "Basic " + Data(credentials.utf8).base64EncodedString()
    }

    @Test("valid credentials name the user")
    func valid() {
        #expect(verifier.isEnabled)
        #expect(verifier.authenticate(authorizationHeader: header("admin:N0tSecure-Ch@ngeMe")) == "admin")
        #expect(verifier.authenticate(authorizationHeader: header("ops:a:b")) == "ops")
        #expect(
            verifier.authenticate(authorizationHeader: "basic " + Data("ops:a:b".utf8).base64EncodedString()) == "ops")
    }

    @Test("anything else is refused")
    func refused() {
        for value in [
            nil, "", "Basic", "Bearer abc", "Basic !!!notbase64", header("admin:wrong"), header("admin"),
            header("nobody:N0tSecure-Ch@ngeMe"), header(":N0tSecure-Ch@ngeMe"), header("admin:N0tSecure-Ch@ngeMe "),
        ] {
            #expect(verifier.authenticate(authorizationHeader: value) == nil, "\(value ?? "nil")")
        }
        #expect(!BasicAuthVerifier(users: []).isEnabled)
    }
}
