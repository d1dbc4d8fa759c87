import NIOCore
import WeftWire

/// Both directions of one stream.
struct StreamState {
    /// The app's direction, towards the peer.
    enum Sending: Equatable {
        case open
        /// The app finished; the fin goes out with the last byte.
        case finishing
        /// The fin is framed.
        case finished
    }

    /// The peer's direction.
    enum Receiving: Equatable {
        /// Data overtook the open on another link: held until the open arrives.
        case awaitingOpen
        case open
        /// Every byte and the fin were delivered.
        case finished
    }

    // Sending: app bytes not yet put into frames, the next offset to frame, credit.
    var pending = SendQueue()
    var nextOffset: UInt64 = 0
    var sending = Sending.open
    /// The peer accepts bytes below this offset.
    var peerLimit: UInt64
    var readingPaused = false

    // Receiving.
    var receiving: Receiving
    var reassembly: ReassemblyBuffer
    /// The highest stream offset the peer has sent (counted against the tunnel's credit).
    var receivedEnd: UInt64 = 0
    /// What this side grants the peer on this stream.
    var credit: CreditWindow

    init(peerLimit: UInt64, window: Int, maximumWindow: Int, openSeen: Bool, maxPieces: Int, now: Duration) {
        self.reassembly = ReassemblyBuffer(maxPieces: maxPieces)
        self.peerLimit = peerLimit
        self.credit = CreditWindow(size: window, maximum: maximumWindow, limit: UInt64(window), now: now)
        self.receiving = openSeen ? .open : .awaitingOpen
    }

    var finRequested: Bool { sending != .open }
    var finSent: Bool { sending == .finished }
    var openSeen: Bool { receiving != .awaitingOpen }
    /// Bytes delivered to the app and taken by it.
    var consumed: UInt64 { credit.consumed }

    /// Whether nothing more will happen on this stream. Its frames still in flight need no
    /// stream state: re-sends carry everything in the frame itself.
    var isDone: Bool { sending == .finished && receiving == .finished && pending.readableBytes == 0 }
}
