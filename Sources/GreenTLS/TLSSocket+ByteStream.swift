import Green

/// `BufferedReader` and `BufferedWriter` work over TLS as over a plain
/// socket: `recv(into:timeout:)` returns 0 at close_notify, `sendAll`
/// bounds the whole write by its timeout.
extension TLSSocket: ByteStream {}
