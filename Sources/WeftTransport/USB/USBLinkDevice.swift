/// What makes a USB device a weft link: its IDs, its vendor interface and its two bulk
/// endpoints. The gadget side writes these descriptors (`USBGadget`); the host side looks for
/// them (`USBHostLinkTransport`), and tells weft gadgets apart by their serial number, which
/// each site announces.
public enum USBLinkDevice {
    /// pid.codes' vendor ID with its test product ID: a device for labs and one's own cables,
    /// never sold.
    public static let vendorID: UInt16 = 0x1209
    public static let productID: UInt16 = 0x0001
    public static let productName = "weft link"
    /// The vendor interface: class 0xFF, subclass "W", protocol 1 (this framing).
    public static let interfaceClass: UInt8 = 0xFF
    public static let interfaceSubclass: UInt8 = 0x57
    public static let interfaceProtocol: UInt8 = 1
    /// Endpoint addresses: 0x81 is bulk IN (to the host), 0x02 bulk OUT.
    public static let inEndpoint: UInt8 = 0x81
    public static let outEndpoint: UInt8 = 0x02
    /// Bytes per transfer both ends use. The framing keeps every transfer off a multiple of
    /// 64 — full speed's packet size, which high speed's 512 and super speed's 1024 are
    /// multiples of — so each ends with a short packet at any speed.
    public static let maxTransfer = 16 * 1024
    public static let framingPacketSize = 64

    /// Serial numbers announced and matched: 1–32 letters, digits and `-`.
    public static func isSerial(_ text: some StringProtocol) -> Bool {
        (1...32).contains(text.utf8.count)
            && text.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d
            }
    }

    /// FunctionFS's descriptor blob (`FUNCTIONFS_DESCRIPTORS_MAGIC_V2`): the interface and its
    /// endpoints at full speed (64-byte packets) and high speed (512).
    static func functionFSDescriptors() -> [UInt8] {
        func interface() -> [UInt8] {
            [9, 4, 0, 0, 2, interfaceClass, interfaceSubclass, interfaceProtocol, 1]
        }
        func endpoint(_ address: UInt8, _ size: UInt16) -> [UInt8] {
            [7, 5, address, 2, UInt8(size & 0xff), UInt8(size >> 8), 0]
        }
        let full = interface() + endpoint(inEndpoint, 64) + endpoint(outEndpoint, 64)
        let high = interface() + endpoint(inEndpoint, 512) + endpoint(outEndpoint, 512)
        let flags: UInt32 = 1 | 2  // FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_HAS_HS_DESC
        let body = le32(3) + le32(3) + full + high
        return le32(3) + le32(UInt32(12 + body.count)) + le32(flags) + body
    }

    /// FunctionFS's strings blob (`FUNCTIONFS_STRINGS_MAGIC`): the interface's name, US English.
    static func functionFSStrings() -> [UInt8] {
        let body = le32(1) + le32(1) + [0x09, 0x04] + Array(productName.utf8) + [0]
        return le32(2) + le32(UInt32(8 + body.count)) + body
    }

    private static func le32(_ value: UInt32) -> [UInt8] {
        [UInt8(value & 0xff), UInt8((value >> 8) & 0xff), UInt8((value >> 16) & 0xff), UInt8(value >> 24)]
    }
}
