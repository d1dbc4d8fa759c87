import Foundation
import WeftWire

/// Left-aligned columns for terminal output, two spaces apart.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: String...) { self.header = header }

    /// Cells are escaped: names come from other sites, through the API.
    mutating func add(_ row: String...) { rows.append(row.map(WireText.escaped)) }

    func render(indent: String = "") -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in
            all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0
        }
        return all.map { row in
            let cells = row.enumerated().map { column, text in
                column == row.count - 1 ? text : text.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }
            return indent + cells.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

/// Human units for bytes, rates and durations.
enum Units {
    static func bytes(_ value: Double) -> String {
        scaled(value, units: ["B", "KB", "MB", "GB", "TB"], base: 1000)
    }

    static func bits(perSecond value: Double) -> String {
        scaled(value, units: ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"], base: 1000)
    }

    static func scaled(_ value: Double, units: [String], base: Double) -> String {
        var value = value
        var index = 0
        while value >= base && index < units.count - 1 {
            value /= base
            index += 1
        }
        return index == 0 ? "\(Int(value)) \(units[0])" : "\(String(format: "%.1f", value)) \(units[index])"
    }

    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds)
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
        if total < 86400 { return "\(total / 3600)h\(String(format: "%02d", total % 3600 / 60))m" }
        return "\(total / 86400)d\(total % 86400 / 3600)h"
    }
}
