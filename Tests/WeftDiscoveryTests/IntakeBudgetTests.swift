import Testing
import WeftDiscovery

@Suite(
    "intake budget: one bucket per known site, one shared by the rest, on an injected clock", .timeLimit(.minutes(10)))
struct IntakeBudgetTests {
    let configuration = IntakeBudget.Configuration(
        knownBurst: 4, knownPerSecond: 1, unknownBurst: 10, unknownPerSecond: 5)

    func admitted(_ budget: inout IntakeBudget, _ sender: IntakeBudget.Sender, _ count: Int, at now: Duration) -> Int {
        (0..<count).filter { _ in budget.admit(sender, now: now) }.count
    }

    @Test("a known site that floods only spends its own bucket")
    func knownFlood() {
        var budget = IntakeBudget(configuration: configuration)
        #expect(admitted(&budget, .known("noisy"), 100, at: .seconds(1)) == 4)
        #expect(admitted(&budget, .known("quiet"), 1, at: .seconds(1)) == 1)
        #expect(admitted(&budget, .unknown, 1, at: .seconds(1)) == 1)
        // Refilled at its rate, never beyond its burst.
        #expect(admitted(&budget, .known("noisy"), 100, at: .seconds(3)) == 2)
        #expect(admitted(&budget, .known("noisy"), 100, at: .seconds(1000)) == 4)
    }

    @Test("strangers share one bucket and cannot starve known sites")
    func unknownFlood() {
        var budget = IntakeBudget(configuration: configuration)
        #expect(admitted(&budget, .unknown, 1000, at: .zero) == 10)
        #expect(admitted(&budget, .known("site"), 1, at: .zero) == 1)
        #expect(admitted(&budget, .unknown, 1000, at: .milliseconds(400)) == 2)
    }

    @Test("buckets of names no longer pinned are forgotten")
    func forget() {
        var budget = IntakeBudget(configuration: configuration)
        _ = admitted(&budget, .known("gone"), 100, at: .zero)
        budget.keep(only: ["other"])
        #expect(admitted(&budget, .known("gone"), 100, at: .zero) == 4)
    }
}
