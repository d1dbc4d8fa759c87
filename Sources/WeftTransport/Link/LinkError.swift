import WeftWire

/// Why a link could not be made or was lost. A struct with a code, so new reasons can be added
/// without breaking anyone who switches over the old ones.
public struct LinkError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// TLS and the handshake did not finish in time.
        public static let handshakeTimeout = Code("handshake timeout")
        /// The peer broke the handshake (bad bytes, wrong site, wrong version).
        public static let handshakeFailed = Code("handshake failed")
        /// The peer answered with a refusal.
        public static let refused = Code("refused")
        /// The connection closed before the handshake finished.
        public static let closed = Code("closed during handshake")
        /// The transport could not open its byte stream (a proxy, an HTTP upgrade, a resolved
        /// address the endpoint policy forbids).
        public static let transport = Code("transport failed")

        public var description: String { name }
    }

    public let code: Code
    public let message: String
    /// Set when the peer refused.
    public let refusal: LinkRefuse?

    public init(_ code: Code, _ message: String, refusal: LinkRefuse? = nil) {
        self.code = code
        self.message = message
        self.refusal = refusal
    }

    public var description: String { "\(code): \(message)" }
}
