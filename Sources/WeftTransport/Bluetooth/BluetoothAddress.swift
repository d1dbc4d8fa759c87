/// A Bluetooth device address (BD_ADDR), written as BlueZ writes it: six two-digit hex groups,
/// most significant first (`00:1A:7D:DA:71:13`).
///
/// Addresses come from config files and from peers' announcements, so parsing is strict: exactly
/// six groups of exactly two hex digits and nothing else, and the all-zero address
/// (`BDADDR_ANY`, which means "any adapter" to the kernel) is not an address to dial.
public struct BluetoothAddress: Hashable, Sendable, CustomStringConvertible {
    /// Most significant byte first, as written.
    public let bytes: [UInt8]

    public init?(_ text: some StringProtocol) {
        let groups = text.split(separator: ":", omittingEmptySubsequences: false)
        guard text.utf8.count == 17, groups.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for group in groups {
            guard group.utf8.count == 2, group.utf8.allSatisfy(\.isHexDigit), let byte = UInt8(group, radix: 16)
            else { return nil }
            bytes.append(byte)
        }
        guard bytes.contains(where: { $0 != 0 }) else { return nil }
        self.bytes = bytes
    }

    /// The kernel's `bdaddr_t` order: least significant byte first.
    public var kernelOrder: [UInt8] { bytes.reversed() }

    public init?(kernelOrder: [UInt8]) {
        guard kernelOrder.count == 6, kernelOrder.contains(where: { $0 != 0 }) else { return nil }
        bytes = kernelOrder.reversed()
    }

    public var description: String {
        bytes.map { byte in
            let digits = String(byte, radix: 16, uppercase: true)
            return byte < 16 ? "0" + digits : digits
        }.joined(separator: ":")
    }
}

/// What `listenAddress` of a Bluetooth socket names: an adapter by its address, or by the
/// kernel's name for it (`hci0`). Either is resolved to the adapter's address when a listener
/// binds, so the adapter must be present and up then.
public enum BluetoothAdapter: Hashable, Sendable, CustomStringConvertible {
    case address(BluetoothAddress)
    /// `hciN`: the kernel's index N (0–255).
    case index(UInt8)

    public init?(_ text: some StringProtocol) {
        if let address = BluetoothAddress(text) {
            self = .address(address)
            return
        }
        guard text.hasPrefix("hci") else { return nil }
        let digits = text.dropFirst(3)
        guard (1...3).contains(digits.utf8.count), digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            digits.utf8.count == 1 || digits.first != "0", let index = UInt8(digits)
        else { return nil }
        self = .index(index)
    }

    public var description: String {
        switch self {
        case .address(let address): address.description
        case .index(let index): "hci\(index)"
        }
    }

    /// The adapter's address, when it is present and up on this machine; else an error saying
    /// which of the two it is not.
    public func resolve() throws -> BluetoothAddress {
        try RFCOMMSocket.address(of: self)
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}
