import Testing
import WeftTransport

@Suite("Bluetooth addresses and adapter names: strict parsing", .timeLimit(.minutes(1)))
struct BluetoothAddressTests {
    @Test(
        "addresses that parse, in any case, written back upper-case",
        arguments: [
            ("00:1A:7D:DA:71:13", "00:1A:7D:DA:71:13"), ("00:aa:01:00:00:00", "00:AA:01:00:00:00"),
            ("FF:FF:FF:FF:FF:FF", "FF:FF:FF:FF:FF:FF"), ("0a:0B:0c:0D:0e:0F", "0A:0B:0C:0D:0E:0F"),
        ])
    func parses(text: String, written: String) throws {
        let address = try #require(BluetoothAddress(text))
        #expect(address.description == written)
        #expect(BluetoothAddress(kernelOrder: address.kernelOrder) == address)
        #expect(BluetoothAdapter(text) == .address(address))
    }

    @Test(
        "addresses that are refused",
        arguments: [
            "", "00:00:00:00:00:00", "00:1A:7D:DA:71", "00:1A:7D:DA:71:13:44", "00:1A:7D:DA:71:1", "0:1A:7D:DA:71:13",
            "00-1A-7D-DA-71-13", "00:1A:7D:DA:71:1G", "001A7DDA7113", " 00:1A:7D:DA:71:13", "00:1A:7D:DA:71:13 ",
            "00:1A:7D:DA::13", "+0:1A:7D:DA:71:13", "00:1A:7D:DA:71:٣٣",
        ])
    func refused(text: String) {
        #expect(BluetoothAddress(text) == nil)
    }

    @Test("the kernel's byte order is the written one reversed")
    func kernelOrder() throws {
        let address = try #require(BluetoothAddress("00:1A:7D:DA:71:13"))
        #expect(address.kernelOrder == [0x13, 0x71, 0xDA, 0x7D, 0x1A, 0x00])
        #expect(BluetoothAddress(kernelOrder: [0, 0, 0, 0, 0, 0]) == nil)
        #expect(BluetoothAddress(kernelOrder: [1, 2, 3]) == nil)
    }

    @Test("adapter names: hci0 to hci255, nothing else")
    func adapterNames() {
        #expect(BluetoothAdapter("hci0") == .index(0))
        #expect(BluetoothAdapter("hci12") == .index(12))
        #expect(BluetoothAdapter("hci255") == .index(255))
        #expect(BluetoothAdapter("hci12")?.description == "hci12")
        for text in ["hci", "hci256", "hci01", "hci-1", "hci1a", "HCI0", "hci 1", "hci0001", "wlan0", "hci+1"] {
            #expect(BluetoothAdapter(text) == nil, "\(text)")
        }
    }
}
