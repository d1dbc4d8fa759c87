/// One problem found in a configuration file, located precisely enough to fix it blind.
///
/// Rendered as `file:line:column: key.path: message`, with `warning:` before the path for
/// problems that do not stop the site.
public struct ConfigDiagnostic: Hashable, Sendable, CustomStringConvertible {
    public enum Severity: Hashable, Sendable {
        case error
        case warning
    }

    public var severity: Severity
    /// The file as the user named it.
    public var file: String
    /// 1-based line, or 0 when the problem has no place in the file.
    public var line: Int
    /// 1-based column, or 0 when unknown.
    public var column: Int
    /// The key path, e.g. `localExposedApps[1].appSocket`; empty for the whole file.
    public var path: String
    public var message: String

    public init(severity: Severity, file: String, line: Int, column: Int, path: String, message: String) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    public var description: String {
        var text = file
        if line > 0 {
            text += ":\(line)"
            if column > 0 { text += ":\(column)" }
        }
        text += ": "
        if severity == .warning { text += "warning: " }
        if !path.isEmpty { text += path + ": " }
        return text + message
    }
}
