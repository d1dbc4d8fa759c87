import NIOConcurrencyHelpers
import Testing
import WeftTransport

@testable import WeftSite

@Suite("Bluetooth adapters that come up after start")
struct BluetoothAdapterWatchTests {
    /// A clock whose sleeps return at once, each one calling `tick` with its count: the test
    /// brings adapters up between looks without waiting.
    struct SteppingClock: Clock {
        struct Instant: InstantProtocol {
            var offset: Duration
            func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
            func duration(to other: Instant) -> Duration { other.offset - offset }
            static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
        }
        let sleeps = NIOLockedValueBox(0)
        let tick: @Sendable (Int) -> Void
        var now: Instant { Instant(offset: .seconds(sleeps.withLockedValue { $0 })) }
        var minimumResolution: Duration { .zero }
        func sleep(until deadline: Instant, tolerance: Duration?) async throws {
            try Task.checkCancellation()
            let count = sleeps.withLockedValue { count in
                count += 1
                return count
            }
            tick(count)
        }
    }

    @Test("each waiting socket is reported once its adapter is up; one whose listener failed is looked at again")
    func watch() async throws {
        let hci3 = try #require(BluetoothAdapter("hci3"))
        let hci5 = try #require(BluetoothAdapter("hci5"))
        let address3 = try #require(BluetoothAddress("00:AA:03:00:00:01"))
        let address5 = try #require(BluetoothAddress("00:AA:05:00:00:01"))
        let up = NIOLockedValueBox([BluetoothAdapter: BluetoothAddress]())
        // hci3 comes up before the second look, hci5 before the fourth.
        let clock = SteppingClock { count in
            up.withLockedValue {
                if count == 2 { $0[hci3] = address3 }
                if count == 4 { $0[hci5] = address5 }
            }
        }
        var watch = BluetoothAdapterWatch(
            waiting: [0: hci3, 2: hci5], interval: .seconds(2), clock: clock,
            resolve: { adapter in
                guard let address = up.withLockedValue({ $0[adapter] }) else {
                    throw LinkError(.transport, "no Bluetooth adapter \(adapter) is present and up")
                }
                return address
            })
        #expect(watch.look().isEmpty)
        var calls: [String] = []
        await watch.run { index, address in
            calls.append("\(index) \(address)")
            // The first listener on hci3 fails (the channel is taken): looked at again.
            return calls.count > 1
        }
        #expect(
            calls == ["0 00:AA:03:00:00:01", "0 00:AA:03:00:00:01", "2 00:AA:05:00:00:01"])
        #expect(clock.sleeps.withLockedValue { $0 } == 4)
        #expect(watch.waiting.isEmpty)
    }

    @Test("cancelled, the watch returns with its sockets still waiting")
    func cancelled() async throws {
        let hci3 = try #require(BluetoothAdapter("hci3"))
        let task = Task {
            var watch = BluetoothAdapterWatch(
                waiting: [0: hci3], interval: .milliseconds(10), clock: ContinuousClock(),
                resolve: { _ in throw LinkError(.transport, "down") })
            await watch.run { _, _ in true }
            return watch.waiting.count
        }
        task.cancel()
        #expect(await task.value == 1)
    }
}
