import Benchmark
import NIOCore
import WeftTunnel
import WeftWire

// Hot-path benchmarks: the frame codec, the reassembly buffer, and two tunnel engines moving a
// stream to each other in memory (no sockets, a virtual clock). Allocation counts are exact and
// repeatable, so they carry tight thresholds; times on a shared 2-core machine are not, so
// theirs are loose (they catch a doubling, not a few per cent).
//
// Run: scripts/bench-alloc.sh (or `swift package benchmark` in Benchmarks/).

/// Mallocs: 10 % either way. The tool checks relative and absolute tolerances separately, and
/// a relative one never fires on a baseline of 0: benchmarks that allocate nothing get an
/// absolute one (a few mallocs per 1,000 frames) instead.
func mallocTolerance(allocationFree: Bool) -> BenchmarkThresholds {
    allocationFree
        ? BenchmarkThresholds(absolute: [.p90: 5])
        : BenchmarkThresholds(relative: [.p90: 10.0])
}
/// Times and throughput on a shared 2-core machine: only a doubling counts.
var timeTolerance: BenchmarkThresholds { BenchmarkThresholds(relative: [.p90: 100.0]) }
/// Counts the harness derives from the engines' output (frames, acks, calls): deterministic
/// for a given engine, they explain a change of the malloc figures.
var countTolerance: BenchmarkThresholds { BenchmarkThresholds(relative: [.p90: 10.0]) }

func thresholds(for metrics: [BenchmarkMetric], allocationFree: Bool = false) -> [BenchmarkMetric: BenchmarkThresholds]
{
    var result: [BenchmarkMetric: BenchmarkThresholds] = [:]
    for metric in metrics {
        switch metric {
        case .mallocCountTotal: result[metric] = mallocTolerance(allocationFree: allocationFree)
        case PairMetric.mibPerSecond: result[metric] = timeTolerance
        case .custom: result[metric] = countTolerance
        default: result[metric] = timeTolerance
        }
    }
    return result
}

/// Engine-pair figures per iteration (one whole transfer), recorded as custom metrics.
enum PairMetric {
    static var dataFrames: BenchmarkMetric { .custom("dataFrames", polarity: .prefersSmaller, useScalingFactor: false) }
    static var ackFrames: BenchmarkMetric { .custom("ackFrames", polarity: .prefersSmaller, useScalingFactor: false) }
    static var engineCalls: BenchmarkMetric {
        .custom("engineCalls", polarity: .prefersSmaller, useScalingFactor: false)
    }
    static var mibPerSecond: BenchmarkMetric {
        .custom("MiB/s (wall)", polarity: .prefersLarger, useScalingFactor: false)
    }
}

func payload(_ size: Int) -> ByteBuffer {
    var buffer = ByteBufferAllocator().buffer(capacity: size)
    buffer.writeRepeatingByte(0x5A, count: size)
    return buffer
}

/// `count` DATA frames of `size` bytes each, serialized back to back.
func serializedDataFrames(count: Int, size: Int) -> ByteBuffer {
    let data = payload(size)
    var out = ByteBufferAllocator().buffer(capacity: count * (size + 32))
    let serializer = TunnelFrameSerializer()
    for index in 0..<count {
        serializer.serialize(
            .streamData(StreamData(streamID: 1, offset: UInt64(index * size), fin: false, data: data)), into: &out)
    }
    return out
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration.maxDuration = .seconds(3)
    Benchmark.defaultConfiguration.maxIterations = 1_000
    Benchmark.defaultConfiguration.warmupIterations = 2

    // Per-frame work: CPU time (10 ms resolution here) says nothing; wall clock and throughput do.
    let codecMetrics: [BenchmarkMetric] = [.mallocCountTotal, .wallClock, .throughput]

    // MARK: frame codec

    // One 16 KiB DATA frame into a reused output buffer (as a link's output between flushes).
    Benchmark(
        "Frame.serialize.data16K",
        configuration: .init(
            metrics: codecMetrics, scalingFactor: .kilo, thresholds: thresholds(for: codecMetrics, allocationFree: true)
        )
    ) { benchmark in
        let data = payload(16 << 10)
        let serializer = TunnelFrameSerializer()
        var out = ByteBufferAllocator().buffer(capacity: (16 << 10) + 64)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            out.clear()
            serializer.serialize(
                .streamData(StreamData(streamID: 1, offset: UInt64(index) << 14, fin: false, data: data)),
                into: &out)
            blackHole(out.writerIndex)
        }
    }

    // The same into a fresh `ByteBuffer()` each time, as the engine's per-link output is after
    // every flush: the buffer grows while the frame is written.
    Benchmark(
        "Frame.serialize.data16K.freshBuffer",
        configuration: .init(
            metrics: codecMetrics, scalingFactor: .kilo, thresholds: thresholds(for: codecMetrics))
    ) { benchmark in
        let data = payload(16 << 10)
        let serializer = TunnelFrameSerializer()
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            var out = ByteBuffer()
            serializer.serialize(
                .streamData(StreamData(streamID: 1, offset: UInt64(index) << 14, fin: false, data: data)),
                into: &out)
            blackHole(out)
        }
    }

    // Parsing 16 KiB DATA frames that arrive in one read each (no frame spans two reads).
    Benchmark(
        "Frame.parse.data16K.wholeReads",
        configuration: .init(
            metrics: codecMetrics, scalingFactor: .kilo, thresholds: thresholds(for: codecMetrics, allocationFree: true)
        )
    ) { benchmark in
        let frame = serializedDataFrames(count: 1, size: 16 << 10)
        var parser = TunnelFrameParser()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            parser.append(frame)
            while let parsed = try parser.nextFrame() { blackHole(parsed) }
        }
    }

    // Parsing a stream of DATA frames read in 64 KiB pieces (the largest read NIO's adaptive
    // allocator makes): a frame that spans two reads is joined (copied). 16 KiB frames: one in
    // four spans; 64 KiB frames (the engine's largest, used on fast links): nearly all do.
    // Per inner iteration: one frame.
    for size in [16, 64] {
        Benchmark(
            "Frame.parse.data\(size)K.64KReads",
            configuration: .init(
                metrics: codecMetrics, scalingFactor: .kilo, thresholds: thresholds(for: codecMetrics))
        ) { benchmark in
            let frames = benchmark.scaledIterations.count
            let stream = serializedDataFrames(count: frames, size: size << 10)
            var reads: [ByteBuffer] = []
            var offset = 0
            while offset < stream.readableBytes {
                let length = min(64 << 10, stream.readableBytes - offset)
                reads.append(stream.getSlice(at: offset, length: length)!)
                offset += length
            }
            var parser = TunnelFrameParser()
            var parsedCount = 0
            benchmark.startMeasurement()
            for read in reads {
                parser.append(read)
                while let parsed = try parser.nextFrame() {
                    parsedCount += 1
                    blackHole(parsed)
                }
            }
            benchmark.stopMeasurement()
            precondition(parsedCount == frames)
        }
    }

    // Serialize into a fresh buffer, then parse it: what one frame costs between two engines.
    Benchmark(
        "Frame.roundTrip.data16K",
        configuration: .init(
            metrics: codecMetrics, scalingFactor: .kilo, thresholds: thresholds(for: codecMetrics))
    ) { benchmark in
        let data = payload(16 << 10)
        let serializer = TunnelFrameSerializer()
        var parser = TunnelFrameParser()
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            var out = ByteBuffer()
            serializer.serialize(
                .streamData(StreamData(streamID: 1, offset: UInt64(index) << 14, fin: false, data: data)),
                into: &out)
            parser.append(&out)
            while let parsed = try parser.nextFrame() { blackHole(parsed) }
        }
    }

    // An ack, the most frequent control frame, through a reused buffer.
    Benchmark(
        "Frame.roundTrip.ack",
        configuration: .init(
            metrics: codecMetrics, scalingFactor: .kilo, thresholds: thresholds(for: codecMetrics, allocationFree: true)
        )
    ) { benchmark in
        let serializer = TunnelFrameSerializer()
        var parser = TunnelFrameParser()
        var out = ByteBufferAllocator().buffer(capacity: 64)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            out.clear()
            serializer.serialize(.ack(UInt64(index)), into: &out)
            parser.append(out)
            while let parsed = try parser.nextFrame() { blackHole(parsed) }
        }
    }

    // MARK: reassembly

    // In-order 16 KiB segments: the common case, each handed straight back.
    Benchmark(
        "Reassembly.inOrder.16K",
        configuration: .init(
            metrics: codecMetrics, scalingFactor: .kilo, thresholds: thresholds(for: codecMetrics))
    ) { benchmark in
        let data = payload(16 << 10)
        var buffer = ReassemblyBuffer()
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            let out = try buffer.insert(offset: UInt64(index) << 14, data: data, fin: false)
            blackHole(out)
        }
    }

    // Pairs swapped (1, 0, 3, 2, …): every other segment is held, then drained with the next.
    Benchmark(
        "Reassembly.swappedPairs.16K",
        configuration: .init(
            metrics: codecMetrics, scalingFactor: .kilo, thresholds: thresholds(for: codecMetrics))
    ) { benchmark in
        let data = payload(16 << 10)
        var buffer = ReassemblyBuffer()
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            let segment = index ^ 1
            let out = try buffer.insert(offset: UInt64(segment) << 14, data: data, fin: false)
            blackHole(out)
        }
    }

    // MARK: two engines

    let pairMetrics: [BenchmarkMetric] = [
        .mallocCountTotal, .cpuTotal, .wallClock, .throughput,
        PairMetric.dataFrames, PairMetric.ackFrames, PairMetric.engineCalls, PairMetric.mibPerSecond,
    ]
    for links in [1, 2] {
        Benchmark(
            "EnginePair.64MiB.\(links)link\(links == 1 ? "" : "s")",
            configuration: .init(
                metrics: pairMetrics, maxDuration: .seconds(10), maxIterations: 30,
                thresholds: thresholds(for: pairMetrics))
        ) { benchmark in
            var pair = EnginePair(links: links, bytes: 64 << 20, chunk: payload(64 << 10))
            let clock = ContinuousClock()
            benchmark.startMeasurement()
            let start = clock.now
            pair.run()
            let elapsed = clock.now - start
            benchmark.stopMeasurement()
            pair.verify()
            benchmark.measurement(PairMetric.dataFrames, pair.stats.dataFrames)
            benchmark.measurement(PairMetric.ackFrames, pair.stats.ackFrames)
            benchmark.measurement(PairMetric.engineCalls, pair.stats.engineCalls)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            benchmark.measurement(PairMetric.mibPerSecond, Int(64 / max(seconds, 1e-9)))
        }
    }
}
