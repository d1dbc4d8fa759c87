// libFuzzer target: tunnel frames (the handshake's hello, welcome and refuse included).
//
// The input is a link's byte stream. It is parsed whole, split in two at a position taken from
// its first byte, and in small chunks; all three must give the same frames and the same outcome.
// Every frame parsed must survive a round trip through `TunnelFrameSerializer` unchanged.

import NIOCore
import WeftWire

/// What a parser made of a byte stream: the frames, then whether it stopped on an error.
private struct Outcome: Equatable {
    var frames: [TunnelFrame] = []
    var error: WireError?
    var bufferedBytes = 0
}

/// Feeds `chunks` in order, pulling frames after each until nil or an error.
private func parse(_ chunks: [ByteBuffer]) -> Outcome {
    var parser = TunnelFrameParser()
    var outcome = Outcome()
    for chunk in chunks {
        parser.append(chunk)
        do {
            while let frame = try parser.nextFrame() {
                outcome.frames.append(frame)
            }
        } catch {
            outcome.error = error
            return outcome
        }
    }
    outcome.bufferedBytes = parser.bufferedBytes
    return outcome
}

/// Serializes `frame`, parses it back, and requires the same frame and nothing left over.
private func checkRoundTrip(_ frame: TunnelFrame) {
    var bytes = ByteBuffer()
    TunnelFrameSerializer().serialize(frame, into: &bytes)
    var parser = TunnelFrameParser()
    parser.append(bytes)
    let again: TunnelFrame?
    do {
        again = try parser.nextFrame()
    } catch {
        preconditionFailure("re-serialized \(frame) does not parse: \(error)")
    }
    precondition(again == frame, "round trip changed \(frame) into \(String(describing: again))")
    precondition(parser.bufferedBytes == 0, "round trip of \(frame) left \(parser.bufferedBytes) bytes")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: start, count: count)
    let input = ByteBuffer(bytes: bytes)

    let whole = parse([input])
    for frame in whole.frames { checkRoundTrip(frame) }

    guard let first = bytes.first else { return 0 }
    let split = Int(first) % (count + 1)
    let halves = [
        input.getSlice(at: input.readerIndex, length: split)!,
        input.getSlice(at: input.readerIndex + split, length: count - split)!,
    ]
    precondition(parse(halves) == whole, "splitting the input at \(split) changed the outcome")

    let step = Int(first % 7) + 1
    let chunks = stride(from: 0, to: count, by: step).map {
        input.getSlice(at: input.readerIndex + $0, length: min(step, count - $0))!
    }
    precondition(parse(chunks) == whole, "chunks of \(step) bytes changed the outcome")
    return 0
}
