import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Writes QUIC's datagrams to the UDP socket directly: a run of equal-size packets to one
/// address goes out in one `sendmsg` with UDP generic segmentation offload (`UDP_SEGMENT`), so
/// the kernel, not a system call per packet, cuts it into datagrams.
///
/// NIO reads the socket; writing through its datagram channel would close the channel (and
/// every link on the socket, and the listener) on a send error other than EMSGSIZE or
/// EHOSTUNREACH — EPERM from a local firewall, ENETUNREACH while an interface is down. Here a
/// datagram that cannot be sent is a lost packet, and QUIC recovers it.
struct QUICSocketWriter {
    /// Most datagrams in one segmented send (the kernel's `UDP_MAX_SEGMENTS` on older kernels).
    static let maxSegments = 64
    /// Most bytes in one segmented send: the payload of one IP packet, whatever the family.
    static let maxBatchBytes = 65_000

    let socket: CInt
    /// False once the kernel refused a segmented send for good (no `UDP_SEGMENT`, or an
    /// interface without checksum offload): then every datagram is its own `sendto`.
    private(set) var segmentationOffload = true

    /// Segments where the kernel has `UDP_SEGMENT` (Linux 4.18); `segmentationOffload: false`
    /// sends every datagram on its own (tests use it).
    init(socket: CInt, segmentationOffload: Bool = System.supportsUDPSegmentationOffload) {
        self.socket = socket
        self.segmentationOffload = segmentationOffload && System.supportsUDPSegmentationOffload
    }

    /// Sends `count` bytes at `bytes` to `remote` as datagrams of `segmentSize` bytes (the
    /// last one may be shorter). Returns how many of them the kernel refused.
    @discardableResult
    mutating func send(_ bytes: UnsafePointer<UInt8>, count: Int, segmentSize: Int, to remote: SocketAddress) -> Int {
        let segments = segmentSize > 0 ? (count + segmentSize - 1) / segmentSize : 1
        guard segments > 1 else { return sendOne(bytes, count: count, to: remote) ? 0 : 1 }
        if segmentationOffload, segments <= Self.maxSegments, count <= Self.maxBatchBytes {
            let sent = remote.withSockAddr { address, length in
                Self.sendSegmented(socket, bytes, count, UInt16(segmentSize), address, socklen_t(length))
            }
            if sent >= 0 { return 0 }
            switch errno {
            case EAGAIN, EWOULDBLOCK, ENOBUFS, EPERM, ENETUNREACH, EHOSTUNREACH, ECONNREFUSED:
                // The same fate each datagram would have met alone: lost packets.
                return segments
            case EIO, ENOPROTOOPT, EOPNOTSUPP:
                // No segmentation offload on this path's interface or kernel.
                segmentationOffload = false
            default:
                // EINVAL, EMSGSIZE: this batch does not fit the interface; send it piece by piece.
                break
            }
        }
        var unsent = 0
        for piece in Self.segments(of: count, size: segmentSize)
        where !sendOne(bytes + piece.lowerBound, count: piece.count, to: remote) {
            unsent += 1
        }
        return unsent
    }

    private mutating func sendOne(_ bytes: UnsafePointer<UInt8>, count: Int, to remote: SocketAddress) -> Bool {
        let sent = remote.withSockAddr { address, length in
            sendto(socket, bytes, count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL), address, socklen_t(length))
        }
        return sent >= 0
    }

    /// The byte ranges of the datagrams in `count` bytes cut every `size` bytes (the last one
    /// may be shorter); one range for all of it when `size` is 0. Lazy: no allocation on the
    /// receive path.
    static func segments(of count: Int, size: Int) -> LazyMapSequence<StrideTo<Int>, Range<Int>> {
        let step = size > 0 ? size : max(count, 1)
        return stride(from: 0, to: max(count, 1), by: step).lazy.map { $0..<min($0 + step, count) }
    }

    /// `sendmsg` with a `UDP_SEGMENT` control message; returns what `sendmsg` returned.
    static func sendSegmented(
        _ socket: CInt, _ bytes: UnsafePointer<UInt8>, _ count: Int, _ segmentSize: UInt16,
        _ address: UnsafePointer<sockaddr>, _ addressLength: socklen_t
    ) -> Int {
        // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then the data,
        // aligned to size_t: CMSG_SPACE(2) == 24 and CMSG_LEN(2) == 18 on 64-bit Linux.
        let headerSize = MemoryLayout<cmsghdr>.stride
        let space = headerSize + MemoryLayout<Int>.size
        return withUnsafeTemporaryAllocation(byteCount: space, alignment: MemoryLayout<cmsghdr>.alignment) {
            control in
            control.initializeMemory(as: UInt8.self, repeating: 0)
            var header = cmsghdr()
            header.cmsg_len = headerSize + MemoryLayout<UInt16>.size
            header.cmsg_level = solUDP
            header.cmsg_type = udpSegment
            control.storeBytes(of: header, toByteOffset: 0, as: cmsghdr.self)
            control.storeBytes(of: segmentSize, toByteOffset: headerSize, as: UInt16.self)
            var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes), iov_len: count)
            return withUnsafeMutablePointer(to: &vector) { vector in
                var message = msghdr()
                message.msg_name = UnsafeMutableRawPointer(mutating: address)
                message.msg_namelen = addressLength
                message.msg_iov = vector
                message.msg_iovlen = 1
                message.msg_control = control.baseAddress
                message.msg_controllen = space
                return sendmsg(socket, &message, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
        }
    }

    /// `SOL_UDP` and `UDP_SEGMENT` from <linux/udp.h>, which Glibc's module does not export.
    private static let solUDP: CInt = 17
    private static let udpSegment: CInt = 103
}
