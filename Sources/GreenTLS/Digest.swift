import COpenSSL

/// Message digests by OpenSSL, for the protocols that name one (the
/// WebSocket handshake's SHA-1, WARC's payload digests). Pure
/// computations: any thread, never blocking.
public enum Digest {
    /// The 20-byte SHA-1 of `bytes`, through OpenSSL's EVP interface (its
    /// `SHA1()` is deprecated in OpenSSL 3). Never throws; stops the
    /// process if OpenSSL has no SHA-1.
    public static func sha1(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = digest.withUnsafeMutableBufferPointer { out in
            EVP_Digest(bytes.baseAddress, bytes.count, out.baseAddress, &length, EVP_sha1(), nil)
        }
        // EVP_Digest fails only when OpenSSL cannot allocate its context or
        // has no SHA-1 at all; neither leaves anything sensible to return.
        precondition(ok == 1 && length == 20, "OpenSSL could not compute a SHA-1")
        return Array(digest[0..<20])
    }
}
