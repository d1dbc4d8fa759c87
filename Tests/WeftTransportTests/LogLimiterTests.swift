import Testing
import WeftTransport

@Suite("log limiter", .timeLimit(.minutes(10)))
struct LogLimiterTests {
    @Test("one line per kind per interval, with the count held back")
    func limits() {
        let limiter = LogLimiter(interval: .seconds(10))
        let start = ContinuousClock.now
        #expect(limiter.admit("peer notExposed", now: start) == (true, 0))
        for second in 1...5 {
            #expect(limiter.admit("peer notExposed", now: start + .seconds(second)).allowed == false)
        }
        #expect(limiter.admit("peer targetOutOfRange", now: start + .seconds(1)) == (true, 0))
        #expect(limiter.admit("peer notExposed", now: start + .seconds(10)) == (true, 5))
        #expect(limiter.admit("peer notExposed", now: start + .seconds(21)) == (true, 0))
    }
}
