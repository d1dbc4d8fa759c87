import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// CPU time and memory of a process, read from /proc.
struct ProcessStats {
    /// User + system CPU seconds.
    var cpuSeconds: Double
    /// Resident set size now, bytes.
    var residentBytes: Int
    /// Peak resident set size, bytes.
    var peakResidentBytes: Int

    static func read(pid: Int32 = getpid()) -> ProcessStats {
        var stats = ProcessStats(cpuSeconds: 0, residentBytes: 0, peakResidentBytes: 0)
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // Fields after the command: state is [0]; utime is field 14 overall, [11] here.
            if fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) {
                stats.cpuSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                let parts = line.split(separator: " ", omittingEmptySubsequences: true)
                guard parts.count >= 2, let kilobytes = Int(parts[1]) else { continue }
                if line.hasPrefix("VmRSS:") { stats.residentBytes = kilobytes * 1024 }
                if line.hasPrefix("VmHWM:") { stats.peakResidentBytes = kilobytes * 1024 }
            }
        }
        return stats
    }
}

func megabytes(_ bytes: Int) -> String {
    String(format: "%.1f MB", Double(bytes) / 1_048_576)
}
