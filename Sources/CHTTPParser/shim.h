// Node's http_parser from Debian (libhttp-parser-dev), for GreenHTTP.
// Its HTTP_PARSER_ERRNO and http_parser_settings callbacks import as is;
// the macros Swift cannot read are wrapped here.
#ifndef SWIFT_GREEN_CHTTPPARSER_H
#define SWIFT_GREEN_CHTTPPARSER_H

#include <http_parser.h>

static inline enum http_errno green_http_errno(const http_parser *p) {
    return HTTP_PARSER_ERRNO(p);
}

static inline int green_http_is_upgrade(const http_parser *p) {
    return p->upgrade;
}

static inline int green_http_is_chunked(const http_parser *p) {
    return (p->flags & F_CHUNKED) != 0;
}

static inline unsigned int green_http_method(const http_parser *p) {
    return p->method;
}

static inline unsigned int green_http_status(const http_parser *p) {
    return p->status_code;
}

/// Resets the error so that the parser can be told to stop (pause) from a
/// callback and resumed later.
static inline void green_http_pause(http_parser *p, int paused) {
    http_parser_pause(p, paused);
}

#endif
