import Testing
import WeftWire

@testable import WeftSite

@Suite("relay admission: who may have a relayed link, and how many")
struct RelayAdmissionTests {
    @Test("refusals: no target, the relay itself, the asker itself, a site out of reach")
    func refusals() {
        var book = RelayAdmission(perPair: 2, total: 3)
        #expect(
            book.admit(asker: "a", target: nil, own: "r", targetReachable: true)
                == .refuse(.relayNoPath, "no site named"))
        #expect(
            book.admit(asker: "a", target: "", own: "r", targetReachable: true)
                == .refuse(.relayNoPath, "no site named"))
        if case .refuse(let code, _) = book.admit(asker: "a", target: "r", own: "r", targetReachable: true) {
            #expect(code == .relayNoPath)
        } else {
            Issue.record("the relay relayed to itself")
        }
        if case .refuse(let code, _) = book.admit(asker: "a", target: "a", own: "r", targetReachable: true) {
            #expect(code == .relayNoPath)
        } else {
            Issue.record("a site was relayed to itself")
        }
        if case .refuse(let code, let reason) = book.admit(asker: "a", target: "b", own: "r", targetReachable: false) {
            #expect(code == .relayNoPath && reason.contains("no direct tunnel"))
        } else {
            Issue.record("a site out of reach was admitted")
        }
        #expect(book.total == 0)
    }

    @Test("limits per pair (both directions count) and in all; a release frees a slot")
    func limits() {
        var book = RelayAdmission(perPair: 2, total: 3)
        #expect(book.admit(asker: "a", target: "b", own: "r", targetReachable: true) == .admit)
        #expect(book.admit(asker: "b", target: "a", own: "r", targetReachable: true) == .admit)
        guard case .refuse(.limitReached, _) = book.admit(asker: "a", target: "b", own: "r", targetReachable: true)
        else {
            Issue.record("a third a↔b link passed a per-pair limit of 2")
            return
        }
        #expect(book.admit(asker: "a", target: "c", own: "r", targetReachable: true) == .admit)
        guard case .refuse(.limitReached, _) = book.admit(asker: "c", target: "d", own: "r", targetReachable: true)
        else {
            Issue.record("a fourth link passed a total limit of 3")
            return
        }
        book.release("b", "a")
        #expect(book.total == 2)
        #expect(book.admit(asker: "c", target: "d", own: "r", targetReachable: true) == .admit)
        book.carried(1000, between: "b", and: "a")
        #expect(book.pairs[.init("a", "b")]?.bytes == 1000)
        #expect(book.pairs[.init("a", "b")]?.carried == 2)
        // A release without a slot changes nothing.
        book.release("x", "y")
        book.release("a", "c")
        book.release("a", "c")
        #expect(book.total == 2)
    }
}
