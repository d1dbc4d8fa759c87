import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// This machine as a weft USB device: a configfs gadget with one FunctionFS function — weft's
/// vendor interface (`USBLinkDevice`) with a bulk IN and a bulk OUT endpoint — bound to a USB
/// device controller (UDC). Needs root, configfs and the `libcomposite` and `usb_f_fs` modules.
///
/// The kernel answers the host's standard requests; this type writes the function's
/// descriptors, opens its two endpoints and binds the gadget. Its endpoint files are plain
/// blocking files: a read returns one transfer from the host, a write completes once the host
/// has read it, and both fail (ESHUTDOWN) while the host has the function disabled — a cable
/// pulled, the gadget unbound — and wait again once it is enabled.
final class USBGadget: @unchecked Sendable {
    /// The configfs directory of the gadget.
    let directory: String
    /// Where its FunctionFS instance is mounted.
    let mountPoint: String
    /// The UDC it is bound to.
    let controller: String
    let serial: String
    private(set) var control: CInt = -1
    /// Bulk IN (device to host) and bulk OUT (host to device).
    private(set) var input: CInt = -1
    private(set) var output: CInt = -1

    static let configfs = "/sys/kernel/config"

    /// Creates and binds the gadget. `controller` nil takes the first UDC in `/sys/class/udc`.
    init(serial: String, controller: String?) throws {
        self.serial = serial
        let name = "weft-\(serial)"
        directory = "\(Self.configfs)/usb_gadget/\(name)"
        mountPoint = "/run/weft-usb/\(name)"
        let controllers = Self.controllers()
        if let controller {
            guard controllers.contains(controller) else {
                throw LinkError(
                    .transport,
                    "no USB device controller \(controller) (this machine has: \(controllers.isEmpty ? "none" : controllers.joined(separator: ", ")))"
                )
            }
            self.controller = controller
        } else {
            guard let first = controllers.first else {
                throw LinkError(
                    .transport,
                    "no USB device controller in /sys/class/udc (a machine with USB OTG or device hardware, or the dummy_hcd module)"
                )
            }
            self.controller = first
        }
        try Self.prepareConfigfs()
        Self.remove(directory: directory, mountPoint: mountPoint)
        do {
            try build()
        } catch {
            teardown()
            throw error
        }
    }

    /// The UDCs of this machine, sorted.
    static func controllers() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/udc")) ?? []).sorted()
    }

    private static func prepareConfigfs() throws {
        if !FileManager.default.fileExists(atPath: "\(configfs)/usb_gadget") {
            _ = mount("none", configfs, "configfs", 0, nil)
        }
        guard FileManager.default.fileExists(atPath: "\(configfs)/usb_gadget") else {
            throw LinkError(
                .transport,
                "no USB gadget configfs at \(configfs)/usb_gadget (needs root, configfs and the libcomposite module)")
        }
    }

    private func build() throws {
        let strings = "\(directory)/strings/0x409"
        let config = "\(directory)/configs/c.1"
        let function = "\(directory)/functions/ffs.\(functionName)"
        for path in [directory, strings, config, "\(config)/strings/0x409", function] {
            try Self.makeDirectory(path)
        }
        try Self.put("\(directory)/idVendor", String(format: "0x%04x", USBLinkDevice.vendorID))
        try Self.put("\(directory)/idProduct", String(format: "0x%04x", USBLinkDevice.productID))
        try Self.put("\(directory)/bcdUSB", "0x0200")
        try Self.put("\(strings)/manufacturer", "weft")
        try Self.put("\(strings)/product", USBLinkDevice.productName)
        try Self.put("\(strings)/serialnumber", serial)
        try Self.put("\(config)/strings/0x409/configuration", "weft link")
        try Self.put("\(config)/MaxPower", "100")
        guard symlink(function, "\(config)/ffs.\(functionName)") == 0 else {
            throw Self.failure("link the function into the configuration")
        }
        try Self.makeDirectory("/run/weft-usb")
        try Self.makeDirectory(mountPoint)
        guard mount(functionName, mountPoint, "functionfs", 0, nil) == 0 else {
            throw Self.failure("mount FunctionFS at \(mountPoint) (is usb_f_fs available?)")
        }
        control = open("\(mountPoint)/ep0", O_RDWR | O_CLOEXEC)
        guard control >= 0 else { throw Self.failure("open \(mountPoint)/ep0") }
        try Self.writeAll(control, USBLinkDevice.functionFSDescriptors(), what: "the function's descriptors")
        try Self.writeAll(control, USBLinkDevice.functionFSStrings(), what: "the function's strings")
        input = open("\(mountPoint)/ep1", O_RDWR | O_CLOEXEC)
        output = open("\(mountPoint)/ep2", O_RDWR | O_CLOEXEC)
        guard input >= 0, output >= 0 else { throw Self.failure("open the bulk endpoints") }
        try bind()
    }

    /// FunctionFS instance name: unique per gadget, at most the kernel's 40 characters.
    var functionName: String { "weft\(serial.prefix(24))" }

    /// Binds the gadget to its UDC: the host sees a device plugged in.
    func bind() throws {
        try Self.put("\(directory)/UDC", controller)
    }

    /// Unbinds it: the host sees the device unplugged. Blocked endpoint I/O fails (ESHUTDOWN).
    func unbind() {
        try? Self.put("\(directory)/UDC", "\n")
    }

    /// Unbinds, closes the endpoints and removes the gadget. Call once every thread using the
    /// endpoint descriptors has returned.
    func teardown() {
        unbind()
        for fd in [input, output, control] where fd >= 0 { close(fd) }
        input = -1
        output = -1
        control = -1
        Self.remove(directory: directory, mountPoint: mountPoint)
    }

    /// Removes a gadget left by an earlier run (or a failed start): configfs needs its parts
    /// taken down in order.
    static func remove(directory: String, mountPoint: String) {
        guard FileManager.default.fileExists(atPath: directory) else {
            _ = umount2(mountPoint, CInt(MNT_DETACH))
            rmdir(mountPoint)
            return
        }
        try? put("\(directory)/UDC", "\n")
        _ = umount2(mountPoint, CInt(MNT_DETACH))
        rmdir(mountPoint)
        let config = "\(directory)/configs/c.1"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: config)) ?? [] where entry.hasPrefix("ffs.")
        {
            unlink("\(config)/\(entry)")
        }
        rmdir("\(config)/strings/0x409")
        rmdir(config)
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/functions")) ?? [] {
            rmdir("\(directory)/functions/\(entry)")
        }
        rmdir("\(directory)/strings/0x409")
        rmdir(directory)
    }

    private static func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw failure("create \(path)") }
    }

    private static func put(_ path: String, _ value: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open \(path)") }
        defer { close(fd) }
        try writeAll(fd, Array(value.utf8), what: path)
    }

    static func writeAll(_ fd: CInt, _ bytes: [UInt8], what: String) throws {
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw failure("write \(what)") }
    }

    private static func failure(_ what: String) -> LinkError {
        LinkError(.transport, "USB gadget: cannot \(what): \(String(cString: strerror(errno)))")
    }
}
