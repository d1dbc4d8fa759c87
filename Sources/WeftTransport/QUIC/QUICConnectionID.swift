import CNGTCP2

/// A QUIC connection ID (at most 20 bytes) as a dictionary key, without an allocation per
/// datagram.
struct QUICConnectionID: Hashable {
    private var head: (UInt64, UInt64) = (0, 0)
    private var tail: UInt32 = 0
    private var length: UInt8 = 0

    init?(_ bytes: UnsafePointer<UInt8>?, count: Int) {
        guard count >= 0, count <= Int(NGTCP2_MAX_CIDLEN) else { return nil }
        length = UInt8(count)
        guard count > 0, let bytes else { return }
        withUnsafeMutableBytes(of: &head) { head in
            head.copyMemory(from: UnsafeRawBufferPointer(start: bytes, count: min(count, 16)))
        }
        if count > 16 {
            withUnsafeMutableBytes(of: &tail) { tail in
                tail.copyMemory(from: UnsafeRawBufferPointer(start: bytes + 16, count: count - 16))
            }
        }
    }

    init?(_ cid: ngtcp2_cid) {
        var cid = cid
        let made = withUnsafeBytes(of: &cid.data) { raw in
            QUICConnectionID(raw.bindMemory(to: UInt8.self).baseAddress, count: cid.datalen)
        }
        guard let made else { return nil }
        self = made
    }

    static func == (lhs: QUICConnectionID, rhs: QUICConnectionID) -> Bool {
        lhs.head == rhs.head && lhs.tail == rhs.tail && lhs.length == rhs.length
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(head.0)
        hasher.combine(head.1)
        hasher.combine(tail)
        hasher.combine(length)
    }

    /// A random ID of `QUICConnection.idLength` bytes, for this side of a connection.
    static func random() -> ngtcp2_cid {
        var cid = ngtcp2_cid()
        cid.datalen = QUICConnection.idLength
        withUnsafeMutableBytes(of: &cid.data) { raw in
            _ = gnutls_rnd(GNUTLS_RND_RANDOM, raw.baseAddress, QUICConnection.idLength)
        }
        return cid
    }
}
