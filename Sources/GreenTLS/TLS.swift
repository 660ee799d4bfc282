import COpenSSL
import Glibc
import Green

/// A TLS failure: the operation, and OpenSSL's reason (for a certificate
/// that does not verify, the verifier's: "certificate has expired",
/// "hostname mismatch", "unable to get local issuer certificate", ...).
public struct TLSError: Error, CustomStringConvertible, Sendable {
    /// What failed: the certificate check, the handshake, a read or write
    /// after it, or setting up a context.
    public enum Kind: Sendable, Equatable {
        /// The peer's certificate did not verify.
        case verification
        /// The handshake failed otherwise (protocol, no common cipher or
        /// version, the peer went away).
        case handshake
        /// Reading or writing failed after the handshake.
        case io
        /// A context could not be set up (files, keys).
        case configuration
    }

    /// What failed.
    public let kind: Kind
    /// The operation that failed: "handshake", "read", "write",
    /// "shutdown", or the setup step ("loading CA file ...").
    public let operation: String
    /// OpenSSL's reason, or the certificate verifier's.
    public let reason: String

    /// "TLS <operation> failed: <reason>".
    public var description: String { "TLS \(operation) failed: \(reason)" }
}

/// How a client checks the server it talks to.
public enum TLSVerification: Sendable, Equatable {
    /// The system's trust store (Debian: /etc/ssl/certs), and the name.
    case systemTrustStore
    /// The certificates in this PEM file, and the name.
    case caFile(String)
    /// No check at all: anyone can impersonate the server. For tests
    /// against throwaway certificates only; the name says so.
    case insecureNoVerificationForTestsOnly
}

/// An OpenSSL context (`SSL_CTX`): what a side needs for every connection
/// (trust, certificate and key, ALPN), shared by them. Immutable once
/// made; usable from any thread. Making the first one sets SIGPIPE to be
/// ignored if it still has its default action (OpenSSL writes with
/// write(), and a peer that went away would otherwise kill the process).
public final class TLSContext: @unchecked Sendable {
    // `@unchecked Sendable`: every field is immutable. `ctx` is configured
    // before the factory returns it, then only used to make connections
    // (SSL_new) and to keep client sessions, which OpenSSL locks
    // internally; `alpnWire` is read by OpenSSL, and freed with `ctx`.
    let ctx: OpaquePointer
    /// ALPN protocols in wire format (a server's, for its callback), kept
    /// alive as long as the context.
    private let alpnWire: UnsafeMutablePointer<UInt8>?
    /// Whether it was made by `server(certificateFile:keyFile:alpn:)`.
    public let isServer: Bool
    /// How a client context checks servers
    /// (`.insecureNoVerificationForTestsOnly` on a server context, which
    /// asks clients for no certificate).
    public let verification: TLSVerification
    /// The ALPN protocols offered (client) or accepted (server), in order
    /// of preference; empty: no ALPN.
    public let alpn: [String]

    /// A client context: TLS 1.2 or later, `verification`, and ALPN
    /// offering `alpn` (http/1.1 by default). Any thread; `.caFile` is
    /// read at once, with a plain blocking read. Throws `TLSError`
    /// (`.configuration`) if OpenSSL cannot make the context, load the
    /// trust store or CA file, or set ALPN.
    public static func client(verification: TLSVerification = .systemTrustStore,
                              alpn: [String] = ["http/1.1"]) throws -> TLSContext {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw lastError(.configuration, "SSL_CTX_new") }
        let context = TLSContext(ctx: ctx, isServer: false, verification: verification, alpn: alpn, serverALPN: nil)
        green_ssl_ctx_set_min_proto_tls12(ctx)
        _ = green_ssl_ctx_enable_session_cache_client(ctx)
        switch verification {
        case .systemTrustStore:
            guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
                throw lastError(.configuration, "loading the system trust store")
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        case .caFile(let path):
            guard SSL_CTX_load_verify_locations(ctx, path, nil) == 1 else {
                throw lastError(.configuration, "loading CA file \(path)")
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        case .insecureNoVerificationForTestsOnly:
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
        if !alpn.isEmpty {
            let wire = wireFormat(alpn)
            guard SSL_CTX_set_alpn_protos(ctx, wire, UInt32(wire.count)) == 0 else {
                throw lastError(.configuration, "setting ALPN")
            }
        }
        return context
    }

    /// A server context with the certificate chain and private key from
    /// PEM files, accepting the first of `alpn` a client offers. Reads the
    /// files with plain blocking reads (make it at start-up); any thread.
    /// Throws `TLSError` (`.configuration`) if a file cannot be loaded or
    /// the key does not match the certificate.
    public static func server(certificateFile: String, keyFile: String,
                              alpn: [String] = ["http/1.1"]) throws -> TLSContext {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw lastError(.configuration, "SSL_CTX_new") }
        var serverALPN: UnsafeMutablePointer<UInt8>?
        if !alpn.isEmpty {
            let wire = wireFormat(alpn) + [0]
            serverALPN = .allocate(capacity: wire.count)
            serverALPN!.initialize(from: wire, count: wire.count)
        }
        let context = TLSContext(ctx: ctx, isServer: true, verification: .insecureNoVerificationForTestsOnly,
                                 alpn: alpn, serverALPN: serverALPN)
        green_ssl_ctx_set_min_proto_tls12(ctx)
        guard SSL_CTX_use_certificate_chain_file(ctx, certificateFile) == 1 else {
            throw lastError(.configuration, "loading certificate \(certificateFile)")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, keyFile, SSL_FILETYPE_PEM) == 1 else {
            throw lastError(.configuration, "loading key \(keyFile)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw lastError(.configuration, "the key \(keyFile) does not match the certificate \(certificateFile)")
        }
        if let serverALPN { green_ssl_ctx_set_alpn_select(ctx, serverALPN) }
        return context
    }

    /// Once per process, before the first TLS write (see the shim).
    private static let sigpipeIgnored: Bool = {
        green_ignore_sigpipe_if_default()
        return true
    }()

    private init(ctx: OpaquePointer, isServer: Bool, verification: TLSVerification, alpn: [String],
                 serverALPN: UnsafeMutablePointer<UInt8>?) {
        _ = TLSContext.sigpipeIgnored
        self.ctx = ctx
        self.isServer = isServer
        self.verification = verification
        self.alpn = alpn
        alpnWire = serverALPN
        // Writes may be retried with a moved buffer (Swift arrays), and
        // a partial write reported as such.
        _ = green_ssl_ctx_set_mode(ctx, Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE))
    }

    deinit {
        SSL_CTX_free(ctx)
        alpnWire?.deallocate()
    }

    static func wireFormat(_ protocols: [String]) -> [UInt8] {
        var wire: [UInt8] = []
        for p in protocols {
            let bytes = Array(p.utf8)
            precondition(!bytes.isEmpty && bytes.count < 256, "an ALPN protocol name is 1 to 255 bytes: \(p)")
            wire.append(UInt8(bytes.count))
            wire += bytes
        }
        return wire
    }

    /// OpenSSL's error queue, as one reason (and emptied).
    static func lastError(_ kind: TLSError.Kind, _ operation: String) -> TLSError {
        TLSError(kind: kind, operation: operation, reason: drainErrors() ?? "unknown error")
    }

    static func drainErrors() -> String? {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buf, buf.count)
            let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            reasons.append(String(decoding: bytes, as: UTF8.self))
        }
        return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }
}
