import WeftDiscovery
import WeftWire

/// The release and the protocol it speaks.
enum WeftVersion {
    static let release = "0.1.0"

    static var full: String {
        "weft \(release) (tunnel protocol \(WireProtocol.version), libmosquitto \(Mosquitto.libraryVersion))"
    }
}
