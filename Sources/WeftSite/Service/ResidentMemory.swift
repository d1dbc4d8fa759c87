#if canImport(Glibc)
    import Glibc
#endif

/// Gives back memory that only starting up needed, once the site runs.
///
/// Starting touches most of the program's code (config parsing, TLS and key setup, the
/// dynamic linker's relocations, Swift's first protocol-conformance lookups); those clean,
/// file-backed pages would otherwise stay counted in the node's resident set for its whole
/// life, unused. `madvise(MADV_PAGEOUT)` returns them (code that runs later faults back in
/// from the page cache, a minor fault), and `malloc_trim` returns freed heap.
public enum ResidentMemory {
    /// Linux 5.4's MADV_PAGEOUT; older kernels refuse it and nothing changes.
    static let pageOut: Int32 = 21
    static let dontNeed: Int32 = 4

    /// Resident bytes of this process (VmRSS), or nil where /proc is not there.
    public static func residentBytes() -> Int? {
        guard let status = readFile("/proc/self/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1024
    }

    /// Returns the pages of read-only file mappings (code, constants) and freed heap.
    ///
    /// A mapping with no anonymous page (nothing in it was ever written: code, constants) is
    /// dropped with MADV_DONTNEED, which works even when another process maps the same file;
    /// one that holds written pages (RELRO: relocated, then made read-only) only with
    /// MADV_PAGEOUT, which never discards contents.
    public static func trim() {
        #if canImport(Glibc)
            // glibc's malloc_trim is not in the Glibc module (malloc.h); look it up.
            if let symbol = dlsym(dlopen(nil, RTLD_NOW), "malloc_trim") {
                _ = unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)(0)
            }
            guard let smaps = readFile("/proc/self/smaps") else { return }
            var current: (start: UInt, end: UInt)?
            for line in smaps.split(separator: "\n") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if let first = fields.first, first.contains("-"), !first.hasSuffix(":") {
                    current = nil
                    // start-end perms offset dev inode path: private, file-backed, not writable.
                    guard fields.count >= 6, fields[1].hasPrefix("r"), !fields[1].contains("w"),
                        fields[1].hasSuffix("p"), fields[4] != "0",
                        let dash = first.firstIndex(of: "-"),
                        let start = UInt(first[..<dash], radix: 16),
                        let end = UInt(first[first.index(after: dash)...], radix: 16), end > start
                    else { continue }
                    current = (start, end)
                } else if let range = current, fields.first == "Anonymous:", fields.count >= 2 {
                    let advice = fields[1] == "0" ? dontNeed : pageOut
                    _ = madvise(UnsafeMutableRawPointer(bitPattern: range.start), Int(range.end - range.start), advice)
                    current = nil
                }
            }
        #endif
    }

    private static func readFile(_ path: String) -> String? {
        #if canImport(Glibc)
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 16384)
            while true {
                let count = read(fd, &chunk, chunk.count)
                if count <= 0 { break }
                bytes.append(contentsOf: chunk[0..<count])
            }
            return String(decoding: bytes, as: UTF8.self)
        #else
            return nil
        #endif
    }
}
