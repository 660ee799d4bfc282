import Glibc

/// The Date header's value, formatted once per second.
enum HTTPDate {
    private struct Cache {
        var second = 0
        var text = ""
    }
    // Each thread formats its own: hubs are per thread.
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in p.map { Unmanaged<Box>.fromOpaque($0).release() } }
        return k
    }()

    private final class Box { var cache = Cache() }

    static func now() -> String {
        let box: Box
        if let p = pthread_getspecific(key) {
            box = Unmanaged<Box>.fromOpaque(p).takeUnretainedValue()
        } else {
            box = Box()
            pthread_setspecific(key, Unmanaged.passRetained(box).toOpaque())
        }
        var t = time(nil)
        if box.cache.second != t || box.cache.text.isEmpty {
            var tm = Glibc.tm()
            gmtime_r(&t, &tm)
            var buf = [CChar](repeating: 0, count: 64)
            let n = strftime(&buf, buf.count, "%a, %d %b %Y %H:%M:%S GMT", &tm)
            box.cache.text = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            box.cache.second = t
        }
        return box.cache.text
    }
}
