import Crypto
import CryptoExtras
import Synchronization

/// The mesh key stretched with scrypt: the one secret every other mesh value (the sealing key,
/// the presence names, the derived topic) is derived from.
///
/// An eavesdropper on the broker holds sealed messages and, with the default topic, a value
/// derived from the key; either lets it test guesses of the key offline. With HKDF alone a
/// guess costs microseconds; stretched, each costs 32 MiB and tens of milliseconds, so a weak
/// key (wovenet accepts 8 bytes) is no longer found in minutes. The stretch runs once per key
/// in a process (cached): starting a site, `weft check` and each test agent pay it once.
public enum MeshSecret {
    /// scrypt's cost: N = 2^15, r = 8, p = 1 (128 · r · N = 32 MiB of memory per guess).
    public static let rounds = 1 << 15
    public static let blockSize = 8
    public static let parallelism = 1
    static let salt = Array("weft mesh key v2 (scrypt)".utf8)

    private static let cache = Mutex<[[UInt8]: SymmetricKey]>([:])

    /// The stretched secret of `key`. Computed under the cache's lock, so sites or tests that
    /// start together with one key run scrypt once, not once each.
    public static func stretched(_ key: String) -> SymmetricKey {
        // Kept by a digest of the key, so the cache holds no key in the clear.
        let index = Array(SHA256.hash(data: Array(key.utf8)))
        return cache.withLock { cache in
            if let known = cache[index] { return known }
            let secret: SymmetricKey
            do {
                secret = try KDF.Scrypt.deriveKey(
                    from: Array(key.utf8), salt: salt, outputByteCount: 32, rounds: rounds, blockSize: blockSize,
                    parallelism: parallelism)
            } catch {
                // The parameters are constants; what can fail is the 32 MiB it needs. Nothing of
                // the mesh works without the secret, and a weaker fallback would be a downgrade.
                fatalError("stretching the mesh key failed (scrypt needs 32 MiB of memory): \(error)")
            }
            cache[index] = secret
            return secret
        }
    }

    /// A 32-byte key (or `outputByteCount` bytes) for one purpose, from the stretched secret.
    static func derive(_ key: String, purpose: String, outputByteCount: Int = 32) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: stretched(key), salt: MeshKeys.salt, info: Array(purpose.utf8),
            outputByteCount: outputByteCount)
    }
}
