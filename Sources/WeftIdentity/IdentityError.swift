/// Why a site identity could not be created or loaded.
///
/// An extensible struct rather than an enum, so new codes never break callers.
public struct IdentityError: Error, Hashable, CustomStringConvertible, Sendable {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// One of the identity files is missing while the other exists.
        public static let incomplete = Code("incomplete")
        /// A file exists but does not hold what it should.
        public static let corrupt = Code("corrupt")
        /// The key and certificate do not belong together.
        public static let mismatch = Code("mismatch")
        /// Others than the owner can read or change the state directory or the key.
        public static let insecure = Code("insecure")
        /// The file system refused a read, write or permission change.
        public static let io = Code("io")

        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
