/// Why bytes could not be parsed. A struct with an extensible code, in the style of
/// `NIOSSHError`: new codes never break callers that switch on the ones they know.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The input ended inside a field.
        public static let truncated = Code("truncated")
        /// A length or count is over its hard limit.
        public static let limitExceeded = Code("limit exceeded")
        /// A field holds a value this version does not define.
        public static let invalidValue = Code("invalid value")
        /// Bytes are left over after a complete message.
        public static let trailingBytes = Code("trailing bytes")
        /// The message is of a version this build does not speak.
        public static let unsupportedVersion = Code("unsupported version")

        public var description: String { name }
    }

    public var code: Code
    /// Which field, for logs.
    public var field: String

    public init(_ code: Code, field: String) {
        self.code = code
        self.field = field
    }

    public var description: String { "\(code) in \(field)" }
}
