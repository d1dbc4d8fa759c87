import NIOCore
import WeftWire

/// Both directions of one stream.
struct StreamState {
    // Sending: app bytes not yet put into frames, the next offset to frame, credit.
    var pending = SendQueue()
    var nextOffset: UInt64 = 0
    var finRequested = false
    var finSent = false
    /// The peer accepts bytes below this offset.
    var peerLimit: UInt64
    var readingPaused = false

    // Receiving.
    var reassembly: ReassemblyBuffer
    /// The highest stream offset the peer has sent (counted against the tunnel's credit).
    var receivedEnd: UInt64 = 0
    var consumed: UInt64 = 0
    var advertisedLimit: UInt64
    var window: Int
    var lastWindowUpdate: Duration
    var openSeen: Bool
    var remoteFinDelivered = false

    init(peerLimit: UInt64, window: Int, openSeen: Bool, maxPieces: Int, now: Duration) {
        self.reassembly = ReassemblyBuffer(maxPieces: maxPieces)
        self.peerLimit = peerLimit
        self.window = window
        self.advertisedLimit = UInt64(window)
        self.openSeen = openSeen
        self.lastWindowUpdate = now
    }

    /// Whether nothing more will happen on this stream. Its frames still in flight need no
    /// stream state: re-sends carry everything in the frame itself.
    var isDone: Bool { finSent && remoteFinDelivered && pending.readableBytes == 0 }
}
