import Foundation
import Logging
import WeftWire

/// A swift-log handler writing one line per message, as text or as a JSON object.
///
/// Text: `2026-11-22T10:00:00.123Z INFO weft.site: message key=value`.
/// JSON: `{"time":"…","level":"info","label":"weft.site","msg":"…","key":"value"}`.
public struct WeftLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    private let label: String
    private let format: LoggerSettings.Format
    private let sink: LogSink

    public init(label: String, level: Logger.Level, format: LoggerSettings.Format, sink: LogSink) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        let time = Self.timestamp()
        switch format {
        case .text:
            var line = "\(time) \(Self.levelName(event.level)) \(label): \(Self.textMessage(event.message.description))"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                line += " \(key)=\(Self.textValue(value))"
            }
            sink.write(line: line)
        case .json:
            var object =
                "{\"time\":\(Self.jsonString(time)),\"level\":\(Self.jsonString(Self.levelName(event.level).lowercased()))"
            object += ",\"label\":\(Self.jsonString(label)),\"msg\":\(Self.jsonString(event.message.description))"
            for (key, value) in merged.sorted(by: { $0.key < $1.key })
            where !["time", "level", "label", "msg"].contains(key) {
                object += ",\(Self.jsonString(key)):\(Self.jsonValue(value))"
            }
            sink.write(line: object + "}")
        }
    }

    /// The config's level names mapped onto swift-log's.
    public static func level(_ setting: LoggerSettings.Level) -> Logger.Level {
        switch setting {
        case .debug: .debug
        case .info: .info
        case .warn: .warning
        case .error: .error
        }
    }

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "NOTICE"
        case .warning: "WARN"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }

    static func timestamp() -> String {
        let now = Date()
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
        return now.formatted(style)
    }

    /// A metadata value in a text line: quoted and escaped when it has spaces, quotes, `=` or any
    /// character that could rewrite the line (strings from peers end up here).
    static func textValue(_ value: Logger.MetadataValue) -> String {
        let text = value.description
        let needsQuotes =
            text.isEmpty || text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline })
            || !WireText.isSafe(text)
        return needsQuotes ? jsonString(text) : text
    }

    /// The message of a text line: as it is, unless it holds a character that could rewrite the
    /// line; then escaped as in JSON (without the quotes).
    static func textMessage(_ text: String) -> String {
        guard !WireText.isSafe(text) else { return text }
        return String(jsonString(text).dropFirst().dropLast())
    }

    static func jsonValue(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): jsonString(text)
        case .stringConvertible(let convertible): jsonString(convertible.description)
        case .array(let items): "[" + items.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let entries):
            "{"
                + entries.sorted(by: { $0.key < $1.key }).map { "\(jsonString($0.key)):\(jsonValue($0.value))" }
                .joined(separator: ",") + "}"
        }
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if WireText.isUnsafe(scalar) {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
