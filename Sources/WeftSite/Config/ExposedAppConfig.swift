/// One entry of `localExposedApps`: a local app other sites may reach, by name.
public struct ExposedAppConfig: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        /// One fixed socket.
        case single(AppSocket)
        /// Any TCP target the client names, if inside both ranges.
        case range(ports: [ClosedRange<Int>], addresses: [IPNetwork])
    }

    public var appName: String
    public var mode: Mode
    /// *weft*: the sites that may use the app; empty means every member of the mesh.
    public var allowedSites: [String]

    public init(appName: String, mode: Mode, allowedSites: [String] = []) {
        self.appName = appName
        self.mode = mode
        self.allowedSites = allowedSites
    }

    /// Whether `site` may open streams to the app.
    public func isAllowed(for site: String) -> Bool {
        allowedSites.isEmpty || allowedSites.contains(site)
    }

    /// Whether a range app may connect to `address:port`. Always false for single apps.
    public func allows(_ address: IPAddress, port: Int) -> Bool {
        guard case .range(let ports, let addresses) = mode else { return false }
        return ports.contains { $0.contains(port) } && addresses.contains { $0.contains(address) }
    }
}
