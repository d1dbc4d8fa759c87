/// Why a change to the running site was refused. Nothing of it was applied.
public struct SiteRuntimeError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// No app by that name.
        public static let notFound = Code("not found")
        /// The name (or the local socket) is taken already.
        public static let conflict = Code("conflict")
        /// The local socket cannot be opened.
        public static let cannotListen = Code("cannot listen")
        /// The change could not be saved in stateDir.
        public static let cannotSave = Code("cannot save")
        /// The request asks for something the API may not do (a Unix socket outside
        /// `restfulApi.socketDirectory`).
        public static let forbidden = Code("forbidden")
        /// The site is not running (yet, or any more).
        public static let notRunning = Code("not running")

        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// The request's field at fault, when one is.
    public var field: String?

    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { message }
}
