import CMosquitto

/// Facts about the linked libmosquitto.
public enum Mosquitto {
    /// The library's version, e.g. `2.0.11`.
    public static var libraryVersion: String {
        var major: Int32 = 0
        var minor: Int32 = 0
        var revision: Int32 = 0
        mosquitto_lib_version(&major, &minor, &revision)
        return "\(major).\(minor).\(revision)"
    }
}
