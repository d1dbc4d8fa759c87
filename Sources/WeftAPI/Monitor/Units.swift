import Foundation

/// Human units for bytes, rates and durations.
public enum Units {
    public static func bytes(_ value: Double) -> String {
        scaled(value, units: ["B", "KB", "MB", "GB", "TB"], base: 1000)
    }

    public static func bits(perSecond value: Double) -> String {
        scaled(value, units: ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"], base: 1000)
    }

    public static func scaled(_ value: Double, units: [String], base: Double) -> String {
        var value = value
        var index = 0
        while value >= base && index < units.count - 1 {
            value /= base
            index += 1
        }
        return index == 0 ? "\(Int(value)) \(units[0])" : "\(String(format: "%.1f", value)) \(units[index])"
    }

    public static func duration(_ seconds: Double) -> String {
        let total = Int(seconds)
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
        if total < 86400 { return "\(total / 3600)h\(String(format: "%02d", total % 3600 / 60))m" }
        return "\(total / 86400)d\(total % 86400 / 3600)h"
    }
}
