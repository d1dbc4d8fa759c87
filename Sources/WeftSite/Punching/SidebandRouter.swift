import Metrics
import NIOConcurrencyHelpers
import NIOCore
import WeftTransport
import WeftWire

/// Sorts the non-QUIC datagrams of a QUIC socket: STUN answers go to the request waiting for
/// them, hole-punching probes to whoever punches. Anything else, and a STUN answer nobody
/// waits for, is only counted (`weft_punch_datagrams_ignored_total`).
final class SidebandRouter: Sendable {
    let sideband: QUICSideband
    private struct State {
        var stun: [[UInt8]: EventLoopPromise<StunBinding.Mapped>] = [:]
        var probes: (@Sendable (PunchProbe, SocketAddress) -> Void)?
    }
    private let state = NIOLockedValueBox(State())
    private let ignored = Counter(label: "weft_punch_datagrams_ignored_total")
    /// STUN requests waiting at once, at most.
    static let maxPendingSTUN = 16

    init(sideband: QUICSideband) {
        self.sideband = sideband
        sideband.setHandler { [weak self] datagram, source in self?.received(datagram, from: source) }
    }

    /// Who takes the probes (on the sideband's loop).
    func onProbe(_ handler: (@Sendable (PunchProbe, SocketAddress) -> Void)?) {
        state.withLockedValue { $0.probes = handler }
    }

    func send(_ probe: PunchProbe, to remote: SocketAddress) {
        sideband.send(probe.serialized(), to: remote)
    }

    /// The address and port a NAT (or nobody) maps the QUIC socket to, as `server` sees it:
    /// a STUN binding request from the socket itself, sent again after 0.5, 1.5 and 3.5 s.
    func mapping(from server: SocketAddress, timeout: TimeAmount = .seconds(5)) async throws -> PunchCandidate {
        let loop = sideband.eventLoop
        let transactionID = (0..<12).map { _ in UInt8.random(in: 0...255) }
        let answer = loop.makePromise(of: StunBinding.Mapped.self)
        let admitted = state.withLockedValue { state -> Bool in
            guard state.stun.count < Self.maxPendingSTUN else { return false }
            state.stun[transactionID] = answer
            return true
        }
        guard admitted else {
            let error = DetectionError(.invalidSetting, "too many STUN requests at once")
            answer.fail(error)  // never left pending (NIO reports leaked promises)
            throw error
        }
        let request = StunBinding.request(transactionID: transactionID)
        var tasks: [Scheduled<Void>] = []
        for delay in [0, 500, 1500, 3500] where delay < timeout.nanoseconds / 1_000_000 {
            tasks.append(loop.scheduleTask(in: .milliseconds(Int64(delay))) { self.sideband.send(request, to: server) })
        }
        tasks.append(
            loop.scheduleTask(in: timeout) {
                answer.fail(DetectionError(.timedOut, "no STUN answer from \(server) within \(timeout)"))
            })
        defer {
            for task in tasks { task.cancel() }
            _ = state.withLockedValue { $0.stun.removeValue(forKey: transactionID) }
        }
        let mapped = try await answer.futureResult.get()
        guard let address = IPAddress(bytes: mapped.address) else {
            throw DetectionError(.badAnswer, "the STUN answer from \(server) holds no IP address")
        }
        return PunchCandidate(address: "\(address)", port: mapped.port)
    }

    private func received(_ datagram: ByteBuffer, from source: SocketAddress) {
        if datagram.readableBytes >= StunBinding.headerLength,
            datagram.getInteger(at: datagram.readerIndex + 4, as: UInt32.self) == StunBinding.magicCookie,
            let id = datagram.getBytes(at: datagram.readerIndex + 8, length: 12),
            let waiting = state.withLockedValue({ $0.stun[id] }),
            let mapped = try? StunBinding.parseResponse(datagram, transactionID: id)
        {
            waiting.succeed(mapped)
            return
        }
        if let probe = try? PunchProbe(parsing: datagram), let handler = state.withLockedValue({ $0.probes }) {
            handler(probe, source)
            return
        }
        ignored.increment()
    }
}
