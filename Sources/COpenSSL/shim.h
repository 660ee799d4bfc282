// OpenSSL (Debian libssl-dev), and functions for what its headers make
// macros, which Swift cannot call.
#ifndef SWIFT_GREEN_COPENSSL_SHIM_H
#define SWIFT_GREEN_COPENSSL_SHIM_H

#include <signal.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static inline long green_ssl_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}

static inline int green_ssl_ctx_set_min_proto_tls12(SSL_CTX *ctx) {
    return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}

static inline long green_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }

static inline long green_ssl_ctx_enable_session_cache_client(SSL_CTX *ctx) {
    return SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
}

/// The ALPN callback of a server: picks the first of its protocols (`arg`,
/// wire format, ending with a zero length byte) that the client offers.
static inline int green_ssl_alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                           const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl;
    const unsigned char *ours = (const unsigned char *)arg;
    unsigned int ours_len = 0;
    while (ours[ours_len]) ours_len += ours[ours_len] + 1u;
    unsigned char *selected = NULL;
    unsigned char selected_len = 0;
    if (SSL_select_next_proto(&selected, &selected_len, ours, ours_len, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = selected;
    *outlen = selected_len;
    return SSL_TLSEXT_ERR_OK;
}

static inline void green_ssl_ctx_set_alpn_select(SSL_CTX *ctx, const unsigned char *wire) {
    SSL_CTX_set_alpn_select_cb(ctx, green_ssl_alpn_select_cb, (void *)wire);
}

/// OpenSSL writes to its socket with write(), which raises SIGPIPE when
/// the peer has gone; a process that still has SIGPIPE's default action
/// would die of it. Ignored then (a handler the program installed stays),
/// and the write fails with EPIPE instead, as a Socket's send does.
static inline void green_ignore_sigpipe_if_default(void) {
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
        signal(SIGPIPE, SIG_IGN);
    }
}

#endif
