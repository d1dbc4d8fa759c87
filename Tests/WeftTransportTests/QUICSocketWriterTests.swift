import NIOCore
import Testing

@testable import WeftTransport

#if canImport(Glibc)
    import Glibc
#endif

/// The QUIC socket writer on real UDP sockets on loopback: what a segmented send (UDP GSO)
/// puts on the wire must be exactly the datagrams sent one by one would have been.
@Suite("QUIC socket writer on loopback UDP sockets", .timeLimit(.minutes(2)))
struct QUICSocketWriterTests {
    /// A bound UDP socket on 127.0.0.1 and its address.
    private static func socket() throws -> (CInt, SocketAddress) {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        #expect(bound == 0)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        // Receives never wait for ever: a missing datagram fails the test instead.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (fd, SocketAddress(address, host: "127.0.0.1"))
    }

    /// Receives `count` datagrams (the receiver has no UDP_GRO: one datagram per call).
    private static func receive(_ fd: CInt, count: Int) -> [[UInt8]] {
        var datagrams: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        for _ in 0..<count {
            let received = recv(fd, &buffer, buffer.count, 0)
            if received < 0 { break }
            datagrams.append(Array(buffer[0..<received]))
        }
        return datagrams
    }

    @Test(
        "a run of same-size packets and a shorter last one arrive as the datagrams they were, with and without GSO",
        arguments: [true, false])
    func segmentedSendArrivesAsDatagrams(offload: Bool) throws {
        let (sender, _) = try Self.socket()
        let (receiver, address) = try Self.socket()
        defer {
            close(sender)
            close(receiver)
        }
        let segment = 1_200
        let count = 10 * segment + 345
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 / segment) }
        var writer = QUICSocketWriter(socket: sender, segmentationOffload: offload)
        let unsent = bytes.withUnsafeBufferPointer { pointer in
            writer.send(pointer.baseAddress!, count: count, segmentSize: segment, to: address)
        }
        #expect(unsent == 0)
        let datagrams = Self.receive(receiver, count: 11)
        #expect(datagrams.count == 11)
        #expect(datagrams.map(\.count) == Array(repeating: segment, count: 10) + [345])
        #expect(datagrams.flatMap { $0 } == bytes)
        // Without offload on a socket, it stays off; with it, loopback took the segmented send.
        #expect(writer.segmentationOffload == (offload && System.supportsUDPSegmentationOffload))
    }

    @Test(
        "one sendmsg with UDP_SEGMENT is accepted whole by the kernel and arrives as its segments",
        .enabled(if: System.supportsUDPSegmentationOffload, "this kernel has no UDP_SEGMENT (Linux < 4.18)"))
    func kernelTakesTheSegmentedSend() throws {
        let (sender, _) = try Self.socket()
        let (receiver, address) = try Self.socket()
        defer {
            close(sender)
            close(receiver)
        }
        let segment = 1_444
        let count = 45 * segment
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 / 7) }
        // The writer falls back to single sends on a refusal; this asks the kernel directly.
        let sent = bytes.withUnsafeBufferPointer { pointer in
            address.withSockAddr { name, length in
                QUICSocketWriter.sendSegmented(
                    sender, pointer.baseAddress!, count, UInt16(segment), name, socklen_t(length))
            }
        }
        #expect(sent == count, "sendmsg returned \(sent), errno \(errno)")
        let datagrams = Self.receive(receiver, count: 45)
        #expect(datagrams.map(\.count) == Array(repeating: segment, count: 45))
        #expect(datagrams.flatMap { $0 } == bytes)
    }

    @Test("a send the kernel refuses is counted as unsent datagrams, and the writer carries on")
    func refusedSendIsCounted() throws {
        let (sender, _) = try Self.socket()
        defer { close(sender) }
        // An IPv6 destination on an IPv4 socket: every send fails (EAFNOSUPPORT / EINVAL).
        let nowhere = try SocketAddress(ipAddress: "::1", port: 9)
        var writer = QUICSocketWriter(socket: sender)
        let bytes = [UInt8](repeating: 7, count: 3 * 1_000)
        let unsent = bytes.withUnsafeBufferPointer { pointer in
            writer.send(pointer.baseAddress!, count: bytes.count, segmentSize: 1_000, to: nowhere)
        }
        #expect(unsent == 3)
        let (receiver, address) = try Self.socket()
        defer { close(receiver) }
        let sent = bytes.withUnsafeBufferPointer { pointer in
            writer.send(pointer.baseAddress!, count: 1_000, segmentSize: 1_000, to: address)
        }
        #expect(sent == 0)
        #expect(Self.receive(receiver, count: 1).map(\.count) == [1_000])
    }
}
