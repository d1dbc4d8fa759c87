import Logging
import NIOCore

/// Turns `tunnel.interfaces` (interface names or local addresses) into the addresses links are
/// dialed from.
enum LocalAddresses {
    static func resolve(_ entries: [String], logger: Logger) -> [IPAddress] {
        guard !entries.isEmpty else { return [] }
        let devices = (try? System.enumerateDevices()) ?? []
        var result: [IPAddress] = []
        for entry in entries {
            if let literal = IPAddress(entry) {
                result.append(literal)
                continue
            }
            let found = devices.filter { $0.name == entry }.compactMap { device -> IPAddress? in
                guard let address = device.address, let text = address.ipAddress else { return nil }
                // Link-local IPv6 needs a zone to be dialed from; it is left out.
                guard let ip = IPAddress(text), !(ip.family == .v6 && ip.bytes[0] == 0xfe && ip.bytes[1] & 0xc0 == 0x80)
                else { return nil }
                return ip
            }
            if found.isEmpty {
                logger.warning(
                    "interface has no usable address; not dialing from it", metadata: ["interface": "\(entry)"])
            }
            result += found
        }
        var seen = Set<IPAddress>()
        return result.filter { seen.insert($0).inserted }
    }
}
