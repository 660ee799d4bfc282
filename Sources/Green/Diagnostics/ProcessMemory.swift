import Glibc

/// The process's memory, as the package's benchmarks, fault runs,
/// examples and tests measure it (`package` access: not public API).
package enum ProcessMemory {
    /// Resident set size in bytes, from /proc/self/statm (0 if it cannot
    /// be read). Reads with read(2) into a stack buffer: measuring does not
    /// allocate on the heap it measures.
    package static func residentBytes() -> Int {
        let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buf -> Int in
            let n = read(fd, buf.baseAddress!, buf.count)
            guard n > 0 else { return 0 }
            // "size resident shared ...": the second field, in pages.
            var field = 0, pages = 0
            for byte in buf[0..<n] {
                if byte == UInt8(ascii: " ") {
                    field += 1
                    if field == 2 { break }
                } else if field == 1, byte >= 48, byte <= 57 {
                    pages = pages * 10 + Int(byte - 48)
                }
            }
            return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        }
    }

    /// glibc's malloc_trim(0): returns freed heap memory to the kernel, so
    /// that a measurement after a run does not count what the run freed.
    /// (malloc.h is not in the Glibc module, hence dlsym.)
    package static func trimMalloc() {
        typealias Trim = @convention(c) (Int) -> Int32
        if let f = dlsym(nil, "malloc_trim") { _ = unsafeBitCast(f, to: Trim.self)(0) }
    }
}
