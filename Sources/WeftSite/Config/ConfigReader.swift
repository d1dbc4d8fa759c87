import Foundation
import Yams

/// A value read from the file, with where it was, so later checks can point at it.
struct Located<Value> {
    var value: Value
    var mark: Mark?
    var path: String
}

/// Walks a YAML tree the way viper did for wovenet — keys match case-insensitively — and
/// records every problem with its place instead of stopping at the first.
final class ConfigReader {
    /// A YAML mapping with its keys folded to lower case.
    struct Mapping {
        struct Entry {
            var key: String
            var keyMark: Mark?
            var value: Node
        }

        var path: String
        var mark: Mark?
        var entries: [String: Entry]

        func childPath(_ key: String) -> String { path.isEmpty ? key : path + "." + key }
    }

    let file: String
    private(set) var diagnostics: [ConfigDiagnostic] = []
    /// Files the configuration names that must be readable: checked after decoding
    /// (`ConfigLoader`), so decoding itself never touches the filesystem.
    private(set) var readableFiles: [(text: Located<String>, path: String)] = []

    init(file: String) {
        self.file = file
    }

    var hasErrors: Bool { errorCount > 0 }

    /// How many errors (not warnings) have been recorded so far.
    var errorCount: Int { diagnostics.lazy.filter { $0.severity == .error }.count }

    func error(_ path: String, at mark: Mark?, _ message: String) {
        record(.error, path, at: mark, message)
    }

    func warning(_ path: String, at mark: Mark?, _ message: String) {
        record(.warning, path, at: mark, message)
    }

    private func record(_ severity: ConfigDiagnostic.Severity, _ path: String, at mark: Mark?, _ message: String) {
        diagnostics.append(
            ConfigDiagnostic(
                severity: severity,
                file: file,
                line: mark?.line ?? 0,
                column: mark?.column ?? 0,
                path: path,
                message: message
            )
        )
    }

    /// Reports a value that does not fit, quoting it.
    /// `path` (resolved from `text`) must be a readable file.
    func expectReadable(_ text: Located<String>, path: String) {
        readableFiles.append((text, path))
    }

    func invalid(_ located: Located<String>, _ expectation: String) {
        error(located.path, at: located.mark, "\(quoted(located.value)) — \(expectation)")
    }

    /// A value from the file, quoted and escaped the way JSON logs escape (control characters
    /// and bidirectional overrides as `\u` sequences), so a diagnostic prints it safely.
    func quoted(_ text: String) -> String { WeftLogHandler.jsonString(text) }

    /// Whether a node is YAML null (`~`, `null` or nothing at all).
    static func isNull(_ node: Node?) -> Bool {
        guard let node else { return true }
        guard case .scalar(let scalar) = node else { return false }
        return scalar.style == .plain && node.null != nil
    }

    /// Reads a mapping, warning about keys not in `keys` (with a suggestion when one is close).
    /// Returns nil, after an error, when the node is not a mapping; a null node is an empty one.
    func mapping(_ node: Node?, path: String, fallbackMark: Mark?, keys: [String]) -> Mapping? {
        if Self.isNull(node) {
            return Mapping(path: path, mark: node?.mark ?? fallbackMark, entries: [:])
        }
        guard let node, case .mapping(let yamlMapping) = node else {
            error(path, at: node?.mark ?? fallbackMark, "expected a mapping of keys to values, found \(describe(node))")
            return nil
        }
        var result = Mapping(path: path, mark: yamlMapping.mark ?? fallbackMark, entries: [:])
        let canonical = Dictionary(keys.map { ($0.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
        var merged: [(Node, Node)] = []
        for (key, value) in yamlMapping {
            if key.scalar?.string == "<<" {
                merged += mergeSources(value, path: path)
                continue
            }
            guard case .scalar(let keyScalar) = key else {
                error(path, at: key.mark, "keys must be plain words, found \(describe(key))")
                continue
            }
            let folded = keyScalar.string.lowercased()
            guard let name = canonical[folded] else {
                let childPath = result.childPath(keyScalar.string)
                if let suggestion = Self.suggestion(for: keyScalar.string, among: keys) {
                    warning(childPath, at: key.mark, "unknown key, ignored — did you mean \(suggestion)?")
                } else {
                    warning(childPath, at: key.mark, "unknown key, ignored")
                }
                continue
            }
            if let earlier = result.entries[folded] {
                let line = earlier.keyMark.map { " (first at line \($0.line))" } ?? ""
                error(result.childPath(name), at: key.mark, "duplicate key\(line)")
                continue
            }
            result.entries[folded] = .init(key: name, keyMark: key.mark, value: value)
        }
        // Merged keys (`<<: *anchor`) fill in only what the mapping does not set itself.
        for (key, value) in merged {
            guard let text = key.scalar?.string, let name = canonical[text.lowercased()] else { continue }
            if result.entries[text.lowercased()] == nil {
                result.entries[text.lowercased()] = .init(key: name, keyMark: key.mark, value: value)
            }
        }
        return result
    }

    private func mergeSources(_ value: Node, path: String) -> [(Node, Node)] {
        switch value {
        case .mapping(let mapping):
            return mapping.map { ($0.key, $0.value) }
        case .sequence(let sequence):
            return sequence.flatMap { item in mergeSources(item, path: path) }
        default:
            error(path, at: value.mark, "a merge key (<<) needs a mapping")
            return []
        }
    }

    /// The value under `key`, or nil when absent or null.
    /// The section under `key` of `parent` with these keys allowed (absent or null: an empty
    /// one); nil, with an error, when it is not a mapping.
    func section(_ parent: Mapping, _ key: String, keys: [String]) -> Mapping? {
        mapping(node(parent, key), path: parent.childPath(key), fallbackMark: parent.mark, keys: keys)
    }

    /// One item of a list (`sequence`) that must be a mapping with these keys.
    func entry(_ item: (node: Node, path: String), keys: [String]) -> Mapping? {
        mapping(item.node, path: item.path, fallbackMark: item.node.mark, keys: keys)
    }

    func node(_ mapping: Mapping, _ key: String) -> Node? {
        guard let entry = mapping.entries[key.lowercased()], !Self.isNull(entry.value) else { return nil }
        return entry.value
    }

    func has(_ mapping: Mapping, _ key: String) -> Bool { node(mapping, key) != nil }

    func missing(_ mapping: Mapping, _ key: String, _ what: String = "required") {
        error(mapping.childPath(key), at: mapping.mark, "missing — \(what)")
    }

    /// A scalar as text; numbers and booleans are taken as written, like viper did.
    func string(_ mapping: Mapping, _ key: String, required: Bool = false) -> Located<String>? {
        let path = mapping.childPath(key)
        guard let node = node(mapping, key) else {
            if required { missing(mapping, key) }
            return nil
        }
        guard case .scalar(let scalar) = node else {
            error(path, at: node.mark, "expected a single value, found \(describe(node))")
            return nil
        }
        return Located(value: scalar.string, mark: node.mark, path: path)
    }

    /// A whole number.
    func int(_ mapping: Mapping, _ key: String, required: Bool = false) -> Located<Int>? {
        guard let text = string(mapping, key, required: required) else { return nil }
        let trimmed = text.value.trimmingCharacters(in: .whitespaces)
        guard let value = Int(trimmed) else {
            invalid(text, "expected a whole number")
            return nil
        }
        return Located(value: value, mark: text.mark, path: text.path)
    }

    /// true / false (and YAML 1.1's yes / no / on / off).
    func bool(_ mapping: Mapping, _ key: String) -> Located<Bool>? {
        guard let text = string(mapping, key) else { return nil }
        switch text.value.lowercased() {
        case "true", "yes", "on": return Located(value: true, mark: text.mark, path: text.path)
        case "false", "no", "off": return Located(value: false, mark: text.mark, path: text.path)
        default:
            invalid(text, "expected true or false")
            return nil
        }
    }

    /// A sequence's items with their paths; a null value is an empty list.
    func sequence(_ mapping: Mapping, _ key: String) -> [(node: Node, path: String)] {
        let path = mapping.childPath(key)
        guard let node = node(mapping, key) else { return [] }
        guard case .sequence(let sequence) = node else {
            error(path, at: node.mark, "expected a list, found \(describe(node))")
            return []
        }
        return sequence.enumerated().map { (node: $0.element, path: "\(path)[\($0.offset)]") }
    }

    /// A list of single values; a lone value is a list of one.
    func stringList(_ mapping: Mapping, _ key: String) -> [Located<String>] {
        let path = mapping.childPath(key)
        guard let node = node(mapping, key) else { return [] }
        if case .scalar(let scalar) = node {
            return [Located(value: scalar.string, mark: node.mark, path: path)]
        }
        return sequence(mapping, key).compactMap { item in
            guard case .scalar(let scalar) = item.node, !Self.isNull(item.node) else {
                error(item.path, at: item.node.mark, "expected a single value, found \(describe(item.node))")
                return nil
            }
            return Located(value: scalar.string, mark: item.node.mark, path: item.path)
        }
    }

    func describe(_ node: Node?) -> String {
        switch node {
        case nil: "nothing"
        case .scalar(let scalar)?: "the value \(quoted(scalar.string))"
        case .mapping?: "a mapping"
        case .sequence?: "a list"
        case .alias?: "an alias"
        }
    }

    /// The closest known key, if it is close enough to be a typo.
    static func suggestion(for key: String, among keys: [String]) -> String? {
        let folded = key.lowercased()
        let scored = keys.map { ($0, editDistance(folded, $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        let allowed = max(2, folded.count / 4)
        return best.1 <= allowed ? best.0 : nil
    }

    /// Levenshtein distance, counting a swap of neighbours as one edit.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
}
