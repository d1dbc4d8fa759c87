import WeftDiscovery
import WeftIdentity
import Yams

extension SiteConfigurationDecoder {
    /// `crypto`: the mesh key (wovenet's only key here), then weft's trust settings.
    func decodeCrypto(_ reader: ConfigReader, _ top: ConfigReader.Mapping) -> CryptoSettings? {
        guard
            let crypto = reader.section(
                top, "crypto", keys: ["key", "previousKeys", "trust", "pinnedSites", "revokers"])
        else { return nil }
        guard reader.has(top, "crypto") else {
            reader.missing(top, "crypto", "required: crypto.key, the mesh key (8–255 bytes)")
            return nil
        }
        let key = decodeKey(reader, crypto)
        var trust = TrustMode.firstUse
        if let text = reader.string(crypto, "trust") {
            if let mode = TrustMode(rawValue: text.value.lowercased()) {
                trust = mode
            } else {
                reader.invalid(text, "expected one of \(TrustMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        let pins = decodePinnedSites(reader, crypto)
        if trust == .pinned, reader.has(crypto, "trust"), pins.isEmpty {
            reader.warning(
                crypto.childPath("trust"), at: crypto.mark,
                "is pinned, but crypto.pinnedSites is empty: only sites pinned with `weft trust pin` can join")
        }
        guard let key else { return nil }
        let previous = decodePreviousKeys(reader, crypto, current: key)
        return CryptoSettings(
            key: key, previousKeys: previous, trust: trust, pinnedSites: pins,
            revokers: decodeRevokers(reader, crypto, top, pins: pins))
    }

    /// `revokers`: site names, each once, this site's own name not among them, each pinned in
    /// `pinnedSites`: with trust on first use, whoever announced a revoker's name first would
    /// hold its power to cut members off.
    private func decodeRevokers(
        _ reader: ConfigReader, _ crypto: ConfigReader.Mapping, _ top: ConfigReader.Mapping,
        pins: [String: CertificateFingerprint]
    ) -> [String] {
        let own = reader.string(top, "siteName")?.value
        var sites: [String] = []
        for text in reader.stringList(crypto, "revokers") {
            guard let name = checkName(reader, text) else { continue }
            if sites.contains(name) {
                reader.invalid(text, "listed twice")
            } else if name == own {
                reader.warning(
                    text.path, at: text.mark, "is this site: its own revocations (`weft trust revoke`) always apply")
            } else if pins[name] == nil {
                reader.error(
                    text.path, at: text.mark,
                    "\(reader.quoted(name)) is not in crypto.pinnedSites: a revoker's identity must be pinned "
                        + "(`weft identity` prints it there), or whoever announces the name first could revoke every member"
                )
            } else {
                sites.append(name)
            }
        }
        return sites
    }

    /// `previousKeys`: the keys a rotation moves away from, each checked as the key is.
    private func decodePreviousKeys(_ reader: ConfigReader, _ crypto: ConfigReader.Mapping, current: String)
        -> [String]
    {
        let items = reader.stringList(crypto, "previousKeys")
        if items.count > MeshKeyRing.maxPreviousKeys {
            reader.error(
                crypto.childPath("previousKeys"), at: crypto.mark,
                "has \(items.count) keys, the limit is \(MeshKeyRing.maxPreviousKeys): "
                    + "a rotation needs the one key it moves away from")
            return []
        }
        var keys: [String] = []
        for item in items {
            guard let key = checkKey(reader, item) else { continue }
            if key == current || keys.contains(key) {
                // Never quote a key.
                reader.warning(
                    item.path, at: item.mark, "repeats \(key == current ? "crypto.key" : "an earlier key"); ignored")
                continue
            }
            keys.append(key)
        }
        return keys
    }

    private func decodeKey(_ reader: ConfigReader, _ crypto: ConfigReader.Mapping) -> String? {
        guard let key = reader.string(crypto, "key", required: true) else { return nil }
        return checkKey(reader, key)
    }

    /// A mesh key's length: refused outside 8–255 bytes, warned under 16.
    private func checkKey(_ reader: ConfigReader, _ key: Located<String>) -> String? {
        let length = key.value.utf8.count
        guard (8...255).contains(length) else {
            // Never quote the key itself.
            reader.error(key.path, at: key.mark, "is \(length) bytes long — expected 8 to 255 bytes")
            return nil
        }
        if key.value == CryptoSettings.sampleKey {
            reader.warning(
                key.path, at: key.mark,
                "is the sample config's placeholder: `weft run` refuses it; put the mesh's key here "
                    + "(`weft key` prints a new one; every site of the mesh needs the same)")
        } else if length < 16 {
            // Accepted (wovenet accepts 8), but said plainly: guesses can be tested offline
            // against what anyone on the broker records.
            reader.warning(
                key.path, at: key.mark,
                "is only \(length) bytes: anyone who can read the broker can test guesses of a key this short "
                    + "offline; use 16 or more random bytes (`weft key` prints 32)")
        }
        return key.value
    }

    /// `pinnedSites: [{siteName, fingerprint}]`: one name per identity, one identity per name.
    private func decodePinnedSites(_ reader: ConfigReader, _ crypto: ConfigReader.Mapping)
        -> [String: CertificateFingerprint]
    {
        var pins: [String: CertificateFingerprint] = [:]
        var names: [CertificateFingerprint: String] = [:]
        for item in reader.sequence(crypto, "pinnedSites") {
            guard
                let entry = reader.entry(item, keys: ["siteName", "fingerprint"])
            else { continue }
            let name = reader.string(entry, "siteName", required: true).flatMap { checkName(reader, $0) }
            guard let text = reader.string(entry, "fingerprint", required: true) else { continue }
            guard let fingerprint = CertificateFingerprint(text.value) else {
                reader.invalid(text, "expected sha256: and 64 hex digits, as `weft identity` prints it at that site")
                continue
            }
            guard let name else { continue }
            if pins[name] != nil {
                reader.error(item.path, at: item.node.mark, "\(reader.quoted(name)) is pinned twice")
            } else if let other = names[fingerprint] {
                reader.error(
                    item.path, at: item.node.mark,
                    "this fingerprint is already pinned for \(reader.quoted(other)): one identity speaks for one site")
            }
            pins[name] = fingerprint
            names[fingerprint] = name
        }
        return pins
    }
}
