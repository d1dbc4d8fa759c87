// libFuzzer target: the message channel's formats.
//
// The input is parsed as a signed discovery message (one MQTT payload), and, on its own, as an
// announcement body, a goodbye body, a rendezvous body and a hole-punching probe. Whatever
// parses must serialize back: a signed message, a goodbye, a rendezvous and a probe to exactly
// the input bytes, an announcement to bytes that parse to the same value (endpoints of unknown
// link types are dropped on parsing, so the bytes may differ).

import NIOCore
import WeftWire

private func checkSigned(_ input: [UInt8]) {
    guard let signed = try? DiscoveryMessageParser().parseSigned(input) else { return }
    let serializer = DiscoveryMessageSerializer()
    let message = serializer.serialize(signed.message)
    precondition(message == signed.signedBytes, "the signed bytes are not the message's serialization")
    let whole = serializer.serialize(signedBytes: signed.signedBytes, signature: signed.signature)
    precondition(whole == input, "re-serializing a signed message changed its bytes")
    switch signed.message.kind {
    case .announcement: checkAnnouncement(signed.message.body)
    case .goodbye: checkGoodbye(signed.message.body)
    case .rendezvous: checkRendezvous(signed.message.body)
    }
}

private func checkRendezvous(_ input: [UInt8]) {
    guard let rendezvous = try? Rendezvous(parsing: input) else { return }
    precondition(rendezvous.serialized() == input, "re-serializing a rendezvous changed its bytes")
}

private func checkProbe(_ input: [UInt8]) {
    guard let probe = try? PunchProbe(parsing: ByteBuffer(bytes: input)) else { return }
    precondition(Array(probe.serialized().readableBytesView) == input, "re-serializing a probe changed its bytes")
}

private func checkAnnouncement(_ input: [UInt8]) {
    guard let announcement = try? SiteAnnouncement(parsing: input) else { return }
    let bytes = announcement.serialized()
    let again: SiteAnnouncement
    do {
        again = try SiteAnnouncement(parsing: bytes)
    } catch {
        preconditionFailure("a re-serialized announcement does not parse: \(error)")
    }
    // Endpoints of unknown link types are dropped (and counted) when parsing: the round trip
    // keeps everything else.
    var expected = announcement
    expected.skippedEndpoints = 0
    precondition(again == expected, "an announcement changed in a round trip")
    precondition(again.serialized() == bytes, "an announcement serializes two ways")
}

private func checkGoodbye(_ input: [UInt8]) {
    guard let goodbye = try? SiteGoodbye(parsing: input) else { return }
    precondition(goodbye.serialized() == input, "re-serializing a goodbye changed its bytes")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: start, count: count))
    checkSigned(input)
    checkAnnouncement(input)
    checkGoodbye(input)
    checkRendezvous(input)
    checkProbe(input)
    return 0
}
