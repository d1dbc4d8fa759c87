import Foundation
import WeftDiscovery
import WeftWire
import Yams

/// `messageChannel`: the MQTT broker, topic, credentials and keep-alive.
extension SiteConfigurationDecoder {
    func decodeMessageChannel(_ reader: ConfigReader, _ top: ConfigReader.Mapping, key: String?)
        -> MessageChannelSettings?
    {
        guard
            let channel = reader.section(top, "messageChannel", keys: ["protocol", "mqtt"])
        else { return nil }
        if !reader.has(top, "messageChannel") {
            reader.missing(top, "messageChannel", "required: messageChannel.mqtt.brokerServer")
            return nil
        }
        if let proto = reader.string(channel, "protocol"), proto.value.lowercased() != "mqtt" {
            reader.invalid(proto, "expected mqtt (the only message channel)")
        }
        guard
            let mqtt = reader.section(
                channel, "mqtt",
                keys: ["brokerServer", "brokerServers", "topic", "username", "password", "caFile", "keepAlive"])
        else { return nil }

        var brokers: [BrokerAddress] = []
        var brokersValid = true
        let servers = [reader.string(mqtt, "brokerServer")].compactMap { $0 } + reader.stringList(mqtt, "brokerServers")
        for server in servers {
            switch BrokerAddress.parse(server.value) {
            case .success(let parsed):
                if brokers.contains(parsed) {
                    reader.warning(server.path, at: server.mark, "repeats \(parsed); ignored")
                } else {
                    brokers.append(parsed)
                }
            case .failure(let error):
                reader.invalid(server, error.message)
                brokersValid = false
            }
        }
        if brokers.count > MQTTSettings.maxBrokers {
            reader.error(
                mqtt.childPath("brokerServers"), at: mqtt.mark,
                "names \(brokers.count) brokers, the limit is \(MQTTSettings.maxBrokers)")
            brokersValid = false
        }
        if servers.isEmpty {
            reader.warning(
                mqtt.childPath("brokerServer"),
                at: mqtt.mark,
                "not set — using wovenet's default public broker \(MQTTSettings.wovenetDefaultBroker); "
                    + "messages are sealed, but a broker of your own is more reliable"
            )
            brokers = [try? BrokerAddress.parse(MQTTSettings.wovenetDefaultBroker).get()].compactMap { $0 }
        }

        var topic: String?
        var derived = false
        if let written = reader.string(mqtt, "topic"), !written.value.isEmpty {
            if let problem = MeshTopic.problem(with: written.value) {
                reader.invalid(written, problem)
            } else {
                topic = written.value
            }
        } else if let key {
            topic = MeshTopic.derived(fromKey: key)
            derived = true
        }

        let username = reader.string(mqtt, "username").map(\.value).flatMap { $0.isEmpty ? nil : $0 }
        let password = reader.string(mqtt, "password").map(\.value).flatMap { $0.isEmpty ? nil : $0 }
        if password != nil && username == nil {
            reader.error(mqtt.childPath("username"), at: mqtt.mark, "missing — a password needs a username")
        }
        var caFile: String?
        if let ca = reader.string(mqtt, "caFile"), !ca.value.isEmpty {
            caFile = decodePath(reader, ca)
            if let caFile { reader.expectReadable(ca, path: caFile) }
            if !brokers.isEmpty, !brokers.contains(where: \.useTLS) {
                reader.warning(ca.path, at: ca.mark, "ignored — no broker is mqtts://")
            }
        }
        var keepAlive = 10
        if let written = reader.int(mqtt, "keepAlive") {
            if MQTTSettings.keepAliveRange.contains(written.value) {
                keepAlive = written.value
            } else {
                reader.error(
                    written.path,
                    at: written.mark,
                    "\(written.value) — expected \(MQTTSettings.keepAliveRange.lowerBound) to "
                        + "\(MQTTSettings.keepAliveRange.upperBound) seconds"
                )
            }
        }
        guard brokersValid, let broker = brokers.first, let topic else { return nil }
        return MessageChannelSettings(
            mqtt: MQTTSettings(
                broker: broker,
                moreBrokers: Array(brokers.dropFirst()),
                topic: topic,
                topicIsDerived: derived,
                username: username,
                password: password,
                caFile: caFile,
                keepAlive: keepAlive
            )
        )
    }
}
