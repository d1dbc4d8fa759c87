import NIOCore
import WeftTransport

/// Which announced endpoints this site dials.
///
/// Any member of the mesh announces what it likes, and this site dials it: a member must not be
/// able to point it at the cloud metadata service (169.254.169.254), at link-local, multicast,
/// broadcast or reserved addresses, or back at this site's own link listeners. Loopback, the
/// private ranges and 198.18.0.0/15 stay allowed: one-machine setups, LANs and the labs use them.
public struct EndpointPolicy: Hashable, Sendable {
    /// Why an endpoint is not dialed.
    public struct Refusal: Hashable, Sendable, CustomStringConvertible {
        public let description: String
        public static let notAnAddress = Refusal(description: "not an IP address")
        public static let badPort = Refusal(description: "port 0")
        public static let unspecified = Refusal(description: "unspecified address")
        public static let thisNetwork = Refusal(description: "0.0.0.0/8 (this network)")
        public static let linkLocal = Refusal(description: "link-local (cloud metadata lives here)")
        public static let multicast = Refusal(description: "multicast")
        public static let broadcast = Refusal(description: "broadcast")
        public static let reserved = Refusal(description: "reserved (240.0.0.0/4)")
        public static let ownListener = Refusal(description: "this site's own link listener")
        public static let malformed = Refusal(description: "malformed for its link type")
    }

    /// This site's link listeners: an endpoint equal to one (or on its port at a loopback
    /// address, when it listens on every address) would link the site to itself.
    public var ownListeners: [HostPort]
    /// This site's Bluetooth adapters (those its Bluetooth sockets listen on). Bluetooth
    /// endpoints are dialed only when there is one, and never to one of them.
    public var ownAdapters: [BluetoothAddress]
    /// Whether this site dials USB gadgets (it has a `usb-host` socket).
    public var dialsUSB: Bool
    /// This site's own USB gadget's serial number, never dialed.
    public var ownUSBSerial: String?

    public init(
        ownListeners: [HostPort] = [], ownAdapters: [BluetoothAddress] = [], dialsUSB: Bool = false,
        ownUSBSerial: String? = nil
    ) {
        self.ownListeners = ownListeners
        self.ownAdapters = ownAdapters
        self.dialsUSB = dialsUSB
        self.ownUSBSerial = ownUSBSerial
    }

    /// Nil if the USB gadget with this serial number may be dialed, else why not.
    public func usbRefusal(serial: String) -> Refusal? {
        guard USBLinkDevice.isSerial(serial) else { return .malformed }
        return serial == ownUSBSerial ? .ownListener : nil
    }

    /// Nil if the Bluetooth adapter `address` may be dialed on `channel`, else why not.
    public func bluetoothRefusal(address text: String, channel: Int) -> Refusal? {
        guard let address = BluetoothAddress(text) else { return .malformed }
        guard BluetoothLinkTransport.channels.contains(channel) else { return .badPort }
        return ownAdapters.contains(address) ? .ownListener : nil
    }

    /// Nil if a connection to `address` (a resolved host name's) may be made, else why not.
    public func refusal(resolved address: SocketAddress) -> Refusal? {
        guard let text = address.ipAddress, let port = address.port else { return .notAnAddress }
        return refusal(address: text, port: port)
    }

    /// Nil if `address`:`port` may be dialed, else why not.
    public func refusal(address text: String, port: Int) -> Refusal? {
        guard let parsed = IPAddress(text) else { return .notAnAddress }
        guard port > 0 else { return .badPort }
        let address = parsed.normalized
        if address.isUnspecified { return .unspecified }
        let b = address.bytes
        switch address.family {
        case .v4:
            if b[0] == 0 { return .thisNetwork }
            if b[0] == 169 && b[1] == 254 { return .linkLocal }
            if b == [255, 255, 255, 255] { return .broadcast }
            if b[0] >= 224 && b[0] <= 239 { return .multicast }
            if b[0] >= 240 { return .reserved }
        case .v6:
            if b[0] == 0xff { return .multicast }
            if b[0] == 0xfe && b[1] & 0xc0 == 0x80 { return .linkLocal }
        }
        for listener in ownListeners where listener.port == port {
            let own = listener.address.normalized
            if own == address || (own.isUnspecified && address.isLoopback) { return .ownListener }
        }
        return nil
    }
}
