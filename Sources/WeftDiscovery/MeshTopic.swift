import Crypto
import WeftIdentity

/// The MQTT topic a mesh meets on.
///
/// wovenet's default topic embedded the key itself; weft's default is derived from the key
/// (scrypt, then HKDF: `MeshSecret`), so the key never reaches the broker, every site with the
/// key computes the same topic, and an eavesdropper pays a scrypt run for each guess it tests.
public enum MeshTopic {
    /// Topic prefix of derived topics.
    public static let derivedPrefix = "weft/"

    /// `weft/` and 32 hex digits derived from `key`.
    public static func derived(fromKey key: String) -> String {
        let derived = MeshSecret.derive(key, purpose: "mqtt topic v2", outputByteCount: 16)
        return derivedPrefix + derived.withUnsafeBytes { $0.hexEncoded }
    }

    /// Why `topic` cannot be used as the mesh's base topic, or nil when it can.
    ///
    /// Sites publish on sub-topics of it, so MQTT wildcards and a trailing slash are refused.
    public static func problem(with topic: String) -> String? {
        if topic.isEmpty { return "the topic is empty" }
        if topic.utf8.count > 200 { return "the topic is \(topic.utf8.count) bytes, the limit is 200" }
        if topic.contains("+") || topic.contains("#") { return "MQTT wildcards (+ and #) are not allowed" }
        if topic.hasSuffix("/") { return "the topic must not end with /" }
        if topic.hasPrefix("$") { return "topics starting with $ are reserved by brokers" }
        if topic.unicodeScalars.contains(where: { $0.value == 0 }) { return "the topic contains a NUL character" }
        return nil
    }
}
