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
        let diagnostics = reader.diagnostics.sorted { ($0.line, $0.column) < ($1.line, $1.column) }
        guard let configuration, !reader.hasErrors else {
            throw ConfigurationError(code: .invalid, diagnostics: diagnostics)
        }
        return LoadedConfiguration(configuration: configuration, warnings: diagnostics, file: file)
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
