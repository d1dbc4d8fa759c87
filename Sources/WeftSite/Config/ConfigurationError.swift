/// A configuration that cannot be used, with every problem found in it.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; extensible without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// No configuration file was found in any of the places searched.
        public static let notFound = Code("not found")
        /// The file exists but cannot be read.
        public static let unreadable = Code("unreadable")
        /// The file is not valid YAML.
        public static let syntax = Code("syntax")
        /// The YAML is fine but its values are not.
        public static let invalid = Code("invalid")

        public var description: String { name }
    }

    public var code: Code
    /// Every problem, errors and warnings, in file order.
    public var diagnostics: [ConfigDiagnostic]

    public init(code: Code, diagnostics: [ConfigDiagnostic]) {
        self.code = code
        self.diagnostics = diagnostics
    }

    /// Only the problems that make the file unusable.
    public var errors: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .error } }

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}
