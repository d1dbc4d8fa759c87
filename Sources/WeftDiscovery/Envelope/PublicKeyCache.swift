import Crypto
import Synchronization

/// Public keys already extracted from certificates, so a sender's certificate is parsed once,
/// not once per message. Bounded: when full it starts over, which costs only re-parsing.
public final class PublicKeyCache: Sendable {
    private let entries = Mutex<[[UInt8]: P256.Signing.PublicKey]>([:])
    private let limit: Int

    public init(limit: Int = 4096) {
        self.limit = limit
    }

    func key(for certificate: [UInt8]) -> P256.Signing.PublicKey? {
        entries.withLock { $0[certificate] }
    }

    func store(_ key: P256.Signing.PublicKey, for certificate: [UInt8]) {
        entries.withLock { table in
            if table.count >= limit { table.removeAll(keepingCapacity: true) }
            table[certificate] = key
        }
    }
}
