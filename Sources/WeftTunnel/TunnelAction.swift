import NIOCore
import WeftWire

/// What the engine asks its driver to do. The driver carries actions out in order and makes no
/// protocol decision of its own.
public enum TunnelAction: Sendable, Equatable {
    /// Write these bytes (whole frames) to the link.
    case write(LinkID, ByteBuffer)
    /// Close the link; the engine has already moved its frames elsewhere.
    case closeLink(LinkID, reason: TunnelFailure)
    /// The peer opened a stream to an app; data for it may follow at once. `origin` is the
    /// client's address when the peer sent it; `datagrams`, a UDP client's stream.
    case incomingStream(StreamID, appName: String, target: String?, origin: StreamOrigin?, datagrams: Bool)
    /// Bytes of a stream, in order.
    case deliver(StreamID, ByteBuffer)
    /// The peer finished its direction of the stream (every byte has been delivered).
    case remoteFinished(StreamID)
    /// The stream is over: reset by the peer (with its reason) or by the engine.
    case streamReset(StreamID, code: StreamReset.Code, message: String)
    /// Both directions finished and everything acknowledged: forget the stream.
    case streamClosed(StreamID)
    /// Stop or resume reading the app socket of a stream (send-side back-pressure).
    case pauseReading(StreamID)
    case resumeReading(StreamID)
    /// Call `timerFired` at this time (engine time).
    case scheduleTimer(Duration)
    /// No link for longer than the grace period: every stream was reset.
    case tunnelFailed(reason: TunnelFailure)
}
