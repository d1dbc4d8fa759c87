/// The apps a running site serves and uses: the file's lists with the API's overlay on top
/// (`AppOverlay`), decoded once per change rather than on every request. Overlay entries that
/// no longer decode (the file was edited by hand, or written by another weft) are kept in
/// `undecodable` so they are logged, never silently dropped.
public struct AppsInEffect: Sendable {
    public private(set) var exposed: [(app: ExposedAppConfig, source: AppSource)] = []
    public private(set) var remote: [(app: RemoteAppConfig, source: AppSource)] = []
    /// Overlay entries that do not decode, each with why.
    public private(set) var undecodable: [String] = []

    public init(
        exposed file: [ExposedAppConfig], remote fileRemote: [RemoteAppConfig], overlay: AppOverlay, ownSite: String,
        loader: ConfigLoader
    ) {
        var added: [ExposedAppConfig] = []
        for document in overlay.addedExposedApps {
            do {
                added.append(try loader.parseExposedApp(json: document.json))
            } catch {
                undecodable.append("exposed app \(document.appName): \(error)")
            }
        }
        let hidden = Set(overlay.removedExposedApps).union(added.map(\.appName))
        exposed =
            file.filter { !hidden.contains($0.appName) }.map { (app: $0, source: .config) }
            + added.map { (app: $0, source: .api) }

        var addedRemote: [RemoteAppConfig] = []
        for document in overlay.addedRemoteApps {
            do {
                addedRemote.append(try loader.parseRemoteApp(json: document.json, ownSite: ownSite))
            } catch {
                undecodable.append(
                    "remote app \(AppOverlay.key(site: document.siteName, app: document.appName)): \(error)")
            }
        }
        let hiddenRemote = Set(overlay.removedRemoteApps).union(
            addedRemote.map { AppOverlay.key(site: $0.siteName, app: $0.appName) })
        remote =
            fileRemote.filter { !hiddenRemote.contains(AppOverlay.key(site: $0.siteName, app: $0.appName)) }.map {
                (app: $0, source: .config)
            } + addedRemote.map { (app: $0, source: .api) }
    }

    /// Why `app` cannot be exposed as well (or instead of the app named `replacing`), if it cannot.
    public func conflict(exposing app: ExposedAppConfig, replacing: String? = nil) -> SiteRuntimeError? {
        guard app.appName != replacing, exposed.contains(where: { $0.app.appName == app.appName }) else { return nil }
        return SiteRuntimeError(.conflict, "an exposed app named \"\(app.appName)\" exists already", field: "appName")
    }

    /// Why `app` cannot be used as well (or instead of the entries of `replacing`, a
    /// `site/app` key), if it cannot: its name or its local socket is taken.
    public func conflict(using app: RemoteAppConfig, replacing: String? = nil) -> SiteRuntimeError? {
        let remote = remote.filter { AppOverlay.key(site: $0.app.siteName, app: $0.app.appName) != replacing }
        if remote.contains(where: { $0.app.siteName == app.siteName && $0.app.appName == app.appName }) {
            return SiteRuntimeError(
                .conflict, "a remote app \(AppOverlay.key(site: app.siteName, app: app.appName)) exists already",
                field: "appName")
        }
        if let other = remote.first(where: { $0.app.localSocket == app.localSocket }) {
            return SiteRuntimeError(
                .conflict,
                "\(app.localSocket) is the local socket of \(other.app.siteName)/\(other.app.appName) already",
                field: "localSocket")
        }
        return nil
    }
}
