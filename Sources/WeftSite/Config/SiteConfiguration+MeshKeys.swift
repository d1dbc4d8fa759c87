import WeftDiscovery

extension SiteConfiguration {
    /// `crypto.key` and `crypto.previousKeys` as keys: each on the configured topic, or on the
    /// topic derived from that key when none is configured (so a derived topic moves with its key).
    public var meshKeyRing: MeshKeyRing {
        let mqtt = messageChannel.mqtt
        func keys(_ key: String) -> MeshKeys {
            MeshKeys(key: key, topic: mqtt.topicIsDerived ? MeshTopic.derived(fromKey: key) : mqtt.topic)
        }
        return MeshKeyRing(current: keys(crypto.key), previous: crypto.previousKeys.map(keys))
    }
}
