/// Delays between attempts to re-dial a link: doubling from `initial` up to `maximum`, each
/// drawn between half and all of that bound, so sites that lost a path together do not all
/// re-dial in the same instant.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    /// Failed attempts since the last reset.
    public private(set) var attempts = 0

    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(30)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before the next attempt.
    public mutating func next<Generator: RandomNumberGenerator>(using generator: inout Generator) -> Duration {
        let bound = attempts >= 30 ? maximum : min(maximum, initial * (1 << attempts))
        attempts += 1
        return bound * Double.random(in: 0.5...1.0, using: &generator)
    }

    public mutating func next() -> Duration {
        var generator = SystemRandomNumberGenerator()
        return next(using: &generator)
    }

    /// A link held long enough: the next failure starts from `initial` again.
    public mutating func reset() {
        attempts = 0
    }
}
