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

    /// Resident bytes of this process (VmRSS), or nil where /proc is not there.
    public static func residentBytes() -> Int? {
        guard let status = readFile("/proc/self/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1024
    }

    /// Returns the pages of read-only file mappings (code, constants) and freed heap.
    public static func trim() {
        #if canImport(Glibc)
            // glibc's malloc_trim is not in the Glibc module (malloc.h); look it up.
            if let symbol = dlsym(dlopen(nil, RTLD_NOW), "malloc_trim") {
                _ = unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)(0)
            }
            guard let maps = readFile("/proc/self/maps") else { return }
            for line in maps.split(separator: "\n") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                // start-end perms offset dev inode path: clean, private, file-backed, not writable.
                guard fields.count >= 6, fields[1].hasPrefix("r"), !fields[1].contains("w"), fields[4] != "0",
                    let dash = fields[0].firstIndex(of: "-"),
                    let start = UInt(fields[0][..<dash], radix: 16),
                    let end = UInt(fields[0][fields[0].index(after: dash)...], radix: 16), end > start
                else { continue }
                _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), pageOut)
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
