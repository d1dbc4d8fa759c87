import Logging

/// Builds the process's log handlers from the `logger` settings.
public enum WeftLogging {
    /// A factory for `LoggingSystem.bootstrap`; fails when the log file cannot be opened.
    public static func factory(for settings: LoggerSettings) throws -> @Sendable (String) -> any LogHandler {
        let sink = try settings.file.map { try LogSink(appendingTo: $0) } ?? .standardOutput
        let level = WeftLogHandler.level(settings.level)
        let format = settings.format
        return { label in WeftLogHandler(label: label, level: level, format: format, sink: sink) }
    }
}
