import Foundation
import WeftDiscovery
import WeftWire
import Yams

/// `logger`: level, format and file.
extension SiteConfigurationDecoder {
    func decodeLogger(_ reader: ConfigReader, _ top: ConfigReader.Mapping) -> LoggerSettings? {
        guard
            let logger = reader.section(top, "logger", keys: ["level", "format", "file"])
        else { return nil }
        var settings = LoggerSettings()
        if let level = reader.string(logger, "level") {
            let upper = level.value.uppercased()
            if let parsed = LoggerSettings.Level(rawValue: upper == "WARNING" ? "WARN" : upper) {
                settings.level = parsed
            } else {
                reader.invalid(level, "expected DEBUG, INFO, WARN or ERROR")
            }
        }
        if let format = reader.string(logger, "format") {
            if let parsed = LoggerSettings.Format(rawValue: format.value.lowercased()) {
                settings.format = parsed
            } else {
                reader.invalid(format, "expected text or json")
            }
        }
        if let file = reader.string(logger, "file"), !file.value.isEmpty {
            settings.file = decodePath(reader, file)
        }
        return settings
    }
}
