import Foundation
import WeftWire

/// Left-aligned columns for terminal output, two spaces apart.
public struct TextTable: Sendable {
    public var header: [String]
    public var rows: [[String]] = []

    public init(_ header: String...) { self.header = header }

    public init(header: [String]) { self.header = header }

    /// Cells are escaped: names come from other sites, through the API.
    public mutating func add(_ row: String...) { add(row: row) }

    public mutating func add(row: [String]) { rows.append(row.map(WireText.escaped)) }

    /// The table's lines, each cell padded to its column's width.
    public func lines(indent: String = "") -> [String] {
        render(indent: indent).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    public func render(indent: String = "") -> String {
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
