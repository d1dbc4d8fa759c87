/// Why the engine closed a link or ended the tunnel: a code to match on (tests, metrics, the
/// driver's log level) and a message for people. An extensible struct, not an enum, so a new
/// reason is not a breaking change (the `NIOSSHError` way).
public struct TunnelFailure: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        // A link's failures (the tunnel carries on over its other links).

        /// The peer sent bytes that are not a valid frame (a value past a limit among them).
        public static let malformedFrame = Code("malformed frame")
        /// The peer broke the protocol with valid frames: a handshake frame, an ack for frames
        /// never sent, stream bytes beyond the credit it was granted.
        public static let protocolViolation = Code("protocol violation")
        /// Nothing arrived on the link for the silence limit.
        public static let silent = Code("silent")
        /// The link took no bytes from this side for the stall limit: the peer does not read.
        public static let stalled = Code("stalled")
        /// The peer closed the link with a goodbye.
        public static let peerGoodbye = Code("peer goodbye")

        // The tunnel's (every link closes with it).

        /// No link for the grace period.
        public static let noLink = Code("no link")
        /// Ended on purpose here (`TunnelEngine.close(reason:now:)`).
        public static let closed = Code("closed")
        /// The peer ended its half (its goodbye said the whole tunnel).
        public static let peerStopped = Code("peer stopped")
        /// This side used up its stream ids; a new tunnel follows.
        public static let streamIDsUsedUp = Code("stream ids used up")

        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
