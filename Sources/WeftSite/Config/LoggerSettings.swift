/// `logger`: level, line format and destination.
public struct LoggerSettings: Sendable, Equatable {
    public enum Level: String, Sendable, Equatable, CaseIterable {
        case debug = "DEBUG"
        case info = "INFO"
        case warn = "WARN"
        case error = "ERROR"
    }

    public enum Format: String, Sendable, Equatable, CaseIterable {
        case text
        case json
    }

    public var level: Level
    public var format: Format
    /// A file to append to; `nil` writes to standard output.
    public var file: String?

    public init(level: Level = .info, format: Format = .text, file: String? = nil) {
        self.level = level
        self.format = format
        self.file = file
    }
}
