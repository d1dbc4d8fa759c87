import Foundation

/// The app changes made over the API, kept in `stateDir/apps.json` so they survive a restart
/// and a reload: apps added, and names of the file's apps removed. The apps in effect are the
/// file's, minus those removed or replaced, plus those added.
///
/// Kept as a difference rather than a copy of the lists, so an edit of `config.yaml` still
/// takes effect for every app the API did not touch.
public struct AppOverlay: Codable, Sendable, Equatable {
    public static let fileName = "apps.json"

    public var addedExposedApps: [ExposedAppDocument] = []
    /// Names of the file's exposed apps removed over the API.
    public var removedExposedApps: [String] = []
    public var addedRemoteApps: [RemoteAppDocument] = []
    /// `siteName/appName` of the file's remote apps removed over the API.
    public var removedRemoteApps: [String] = []

    public init() {}

    static func key(site: String, app: String) -> String { "\(site)/\(app)" }

    /// Lists a file's exposed app as removed (once, however often it is removed).
    mutating func remove(exposed name: String) {
        if !removedExposedApps.contains(name) { removedExposedApps.append(name) }
    }

    /// Lists a file's remote app (`site/app`) as removed, once.
    mutating func remove(remote key: String) {
        if !removedRemoteApps.contains(key) { removedRemoteApps.append(key) }
    }

    /// Reads the file; an absent file is an empty overlay.
    static func load(stateDirectory: String) throws -> AppOverlay {
        let path = stateDirectory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else { return AppOverlay() }
        return try JSONDecoder().decode(AppOverlay.self, from: data)
    }

    /// Writes the file atomically (a new file renamed over the old), readable by the owner only.
    func save(stateDirectory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(self)
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let path = stateDirectory + "/" + Self.fileName
        let temporary = path + ".new"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600])
        else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary]) }
        guard rename(temporary, path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }
}

/// Where an app in effect comes from.
public enum AppSource: String, Codable, Sendable {
    case config
    case api
}

extension Encodable {
    /// The value as a JSON object's text.
    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }
}
