// zlib from Debian (zlib1g-dev), for GreenHTTP's gzip/deflate bodies.
// inflateInit2 is a macro; wrapped here for Swift.
#ifndef SWIFT_GREEN_CZLIB_H
#define SWIFT_GREEN_CZLIB_H

#include <zlib.h>

static inline int green_inflate_init2(z_stream *stream, int window_bits) {
    return inflateInit2(stream, window_bits);
}

#endif
