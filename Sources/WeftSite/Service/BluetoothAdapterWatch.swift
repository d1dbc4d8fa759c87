import WeftTransport

/// The Bluetooth sockets whose adapter was missing or down when the site started, looked for
/// again every `interval` until each is up: a dongle plugged in later, or an adapter that
/// bluetoothd powers on after weft started (common at boot), is picked up without a restart.
///
/// An adapter found stays: its listener survives the adapter going down again (an RFCOMM
/// listener is bound to the address, not to the adapter being up), and links lost meanwhile
/// are re-dialed with the usual backoff.
struct BluetoothAdapterWatch<C: Clock>: Sendable where C.Duration == Duration {
    /// The adapter each waiting socket names, by the socket's index in `tunnel.localSockets`.
    private(set) var waiting: [Int: BluetoothAdapter]
    let interval: Duration
    let clock: C
    let resolve: @Sendable (BluetoothAdapter) throws -> BluetoothAddress

    init(
        waiting: [Int: BluetoothAdapter], interval: Duration = .seconds(2), clock: C,
        resolve: @escaping @Sendable (BluetoothAdapter) throws -> BluetoothAddress = { try $0.resolve() }
    ) {
        self.waiting = waiting
        self.interval = interval
        self.clock = clock
        self.resolve = resolve
    }

    /// One look: the waiting sockets whose adapter is up now, in index order.
    func look() -> [(index: Int, address: BluetoothAddress)] {
        waiting.keys.sorted().compactMap { index in
            guard let adapter = waiting[index], let address = try? resolve(adapter) else { return nil }
            return (index, address)
        }
    }

    /// Looks every `interval` until no socket waits or the task is cancelled; `found` is
    /// called for each adapter that is up, and the socket waits no more when it returns true
    /// (false: its listener could not start, look again).
    mutating func run(found: (Int, BluetoothAddress) async -> Bool) async {
        while !waiting.isEmpty {
            do {
                try await clock.sleep(for: interval)
            } catch {
                return
            }
            for (index, address) in look() where await found(index, address) { waiting[index] = nil }
        }
    }
}
