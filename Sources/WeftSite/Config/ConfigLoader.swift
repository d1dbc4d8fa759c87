import Foundation
import Yams

/// A configuration that loaded, with the warnings found on the way.
public struct LoadedConfiguration: Sendable {
    public var configuration: SiteConfiguration
    /// Problems that do not stop the site: unknown keys, ignored values, `quic`.
    public var warnings: [ConfigDiagnostic]
    /// The file it came from, as named.
    public var file: String
}

/// Reads `config.yaml` into a `SiteConfiguration`, or fails with every problem in the file.
public struct ConfigLoader: Sendable {
    /// `$HOME`, for `~` and the default state directory.
    public var homeDirectory: String

    public init(homeDirectory: String = ConfigLoader.defaultHomeDirectory) {
        self.homeDirectory = homeDirectory
    }

    public static var defaultHomeDirectory: String {
        ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
    }

    /// Loads a file. Relative paths inside it are resolved against its directory.
    public func load(file: String) throws(ConfigurationError) -> LoadedConfiguration {
        guard let data = FileManager.default.contents(atPath: file) else {
            let reason = FileManager.default.fileExists(atPath: file) ? "cannot be read" : "does not exist"
            throw ConfigurationError(
                code: .unreadable,
                diagnostics: [
                    .init(severity: .error, file: file, line: 0, column: 0, path: "", message: "the file \(reason)")
                ]
            )
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(
                code: .unreadable,
                diagnostics: [
                    .init(
                        severity: .error, file: file, line: 0, column: 0, path: "",
                        message: "the file is not UTF-8 text")
                ]
            )
        }
        let absolute = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
        let directory = (absolute as NSString).deletingLastPathComponent
        return try parse(yaml: text, file: file, baseDirectory: directory)
    }

    /// Parses YAML text; `file` is only used to label messages.
    public func parse(yaml: String, file: String = "config.yaml", baseDirectory: String)
        throws(ConfigurationError) -> LoadedConfiguration
    {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigurationError(code: .syntax, diagnostics: [Self.syntaxDiagnostic(error, file: file)])
        }
        let reader = ConfigReader(file: file)
        if root == nil {
            reader.error("", at: nil, "the file is empty — siteName, crypto.key and messageChannel are required")
        }
        let decoder = SiteConfigurationDecoder(baseDirectory: baseDirectory, homeDirectory: homeDirectory)
        let configuration = root == nil ? nil : decoder.decode(root, reader: reader)
        for (text, path) in reader.readableFiles where !FileManager.default.isReadableFile(atPath: path) {
            reader.invalid(text, "no readable file at \(path)")
        }
        let diagnostics = reader.diagnostics.sorted { ($0.line, $0.column) < ($1.line, $1.column) }
        guard let configuration, !reader.hasErrors else {
            throw ConfigurationError(code: .invalid, diagnostics: diagnostics)
        }
        return LoadedConfiguration(configuration: configuration, warnings: diagnostics, file: file)
    }

    /// One exposed app from a JSON object with the keys of a `localExposedApps` entry.
    public func parseExposedApp(json: String) throws(ConfigurationError) -> ExposedAppConfig {
        let (node, reader) = try Self.body(json, list: "localExposedApps")
        let decoder = SiteConfigurationDecoder(baseDirectory: "/", homeDirectory: homeDirectory)
        // Stricter than the file: a warning (an unknown or ignored key) refuses the request too.
        guard let app = decoder.decodeExposedApp(node, reader: reader), reader.diagnostics.isEmpty else {
            throw ConfigurationError(
                code: .invalid, diagnostics: Self.relative(reader.diagnostics, list: "localExposedApps"))
        }
        return app
    }

    /// One remote app from a JSON object with the keys of a `remoteApps` entry.
    public func parseRemoteApp(json: String, ownSite: String) throws(ConfigurationError) -> RemoteAppConfig {
        let (node, reader) = try Self.body(json, list: "remoteApps")
        let decoder = SiteConfigurationDecoder(baseDirectory: "/", homeDirectory: homeDirectory)
        guard let app = decoder.decodeRemoteApp(node, ownSite: ownSite, reader: reader), reader.diagnostics.isEmpty
        else {
            throw ConfigurationError(code: .invalid, diagnostics: Self.relative(reader.diagnostics, list: "remoteApps"))
        }
        return app
    }

    private static func body(_ json: String, list: String) throws(ConfigurationError) -> (Node, ConfigReader) {
        // A body is JSON, checked as JSON first: YAML's anchors, aliases (an alias bomb), tags
        // and merge keys have no place in it, whatever the YAML reader would make of them.
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
        else {
            throw bodyError(.syntax, "not JSON: the body must be a JSON object with the keys of a \(list) entry")
        }
        if containsMergeKey(object) {
            throw bodyError(
                .invalid, "\"<<\" is not a key of a \(list) entry (YAML merge keys are not taken from the API)")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: json)
        } catch {
            throw ConfigurationError(code: .syntax, diagnostics: [syntaxDiagnostic(error, file: "body")])
        }
        guard let node, case .mapping(let mapping) = node else {
            throw ConfigurationError(
                code: .invalid,
                diagnostics: [
                    .init(
                        severity: .error, file: "body", line: 0, column: 0, path: "",
                        message: "expected a JSON object with the keys of a \(list) entry")
                ])
        }
        // What a GET returned may be posted back: keys that are null or an empty list say
        // "not set" in JSON, as an absent key does in the file.
        // `source` and `traffic` are what the API adds to an app it lists; not the client's to set.
        let kept = mapping.filter { pair in
            if pair.key.string == "source" || pair.key.string == "traffic" { return false }
            if case .sequence(let items) = pair.value, items.isEmpty { return false }
            return pair.value.null == nil
        }
        return (
            .mapping(Node.Mapping(kept.map { ($0.key, $0.value) }, mapping.tag, mapping.style, mapping.mark)),
            ConfigReader(file: "body")
        )
    }

    /// A refusal of the whole body (no line or field to point at).
    private static func bodyError(_ code: ConfigurationError.Code, _ message: String) -> ConfigurationError {
        ConfigurationError(
            code: code,
            diagnostics: [.init(severity: .error, file: "body", line: 0, column: 0, path: "", message: message)])
    }

    private static func containsMergeKey(_ value: Any) -> Bool {
        if let object = value as? [String: Any] {
            return object.keys.contains("<<") || object.values.contains { containsMergeKey($0) }
        }
        if let array = value as? [Any] { return array.contains { containsMergeKey($0) } }
        return false
    }

    /// Paths relative to the entry: `appSocket`, not `localExposedApps[0].appSocket`.
    private static func relative(_ diagnostics: [ConfigDiagnostic], list: String) -> [ConfigDiagnostic] {
        let prefix = "\(list)[0]"
        return diagnostics.map { diagnostic in
            var diagnostic = diagnostic
            if diagnostic.path.hasPrefix(prefix + ".") {
                diagnostic.path.removeFirst(prefix.count + 1)
            } else if diagnostic.path == prefix {
                diagnostic.path = ""
            }
            return diagnostic
        }
    }

    static func syntaxDiagnostic(_ error: any Error, file: String) -> ConfigDiagnostic {
        func make(_ mark: Mark?, _ problem: String, _ context: YamlError.Context?) -> ConfigDiagnostic {
            var message = "YAML syntax error: \(problem)"
            if let context { message += " (\(context.text) at line \(context.mark.line))" }
            return ConfigDiagnostic(
                severity: .error,
                file: file,
                line: mark?.line ?? 0,
                column: mark?.column ?? 0,
                path: "",
                message: message
            )
        }
        switch error as? YamlError {
        case .scanner(let context, let problem, let mark, _)?: return make(mark, problem, context)
        case .parser(let context, let problem, let mark, _)?: return make(mark, problem, context)
        case .composer(let context, let problem, let mark, _)?: return make(mark, problem, context)
        case .reader(let problem, _, _, _)?: return make(nil, problem, nil)
        default: return make(nil, "\(error)", nil)
        }
    }
}
