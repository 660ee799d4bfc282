// libxml2 from Debian (libxml2-dev): the HTML push parser in SAX mode for
// the crawler's link extraction, and the XML reader for sitemaps.
#ifndef SWIFT_GREEN_CLIBXML2_H
#define SWIFT_GREEN_CLIBXML2_H

// Debian builds libxml2 with ICU, so encoding.h would include ICU's
// headers, which clash with the ICU copy inside Foundation when Swift
// imports both. Nothing here uses libxml2's ICU converters: the only
// difference is two pointer fields at the end of xmlCharEncodingHandler,
// a struct no code of this project lays out or reads.
#include <libxml/xmlversion.h>
#undef LIBXML_ICU_ENABLED
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/xmlreader.h>
#include <libxml/xmlerror.h>
#include <libxml/encoding.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// Link collection from libxml2's HTML push parser, in C: the parser calls
// back once per start tag, and a Swift call per element would cost more
// than the parsing. Only a few tags matter; their attribute values
// (entity-decoded UTF-8, as libxml2 gives them) are appended to one byte
// buffer as records that Swift reads after each chunk:
//   kind (1 byte) | flags (1 byte) | length (4 bytes, native order) | bytes
// No tree is built and nothing of the page is kept but these values.

enum {
    GREEN_HTML_A = 1,        // <a href>
    GREEN_HTML_AREA = 2,     // <area href>
    GREEN_HTML_IFRAME = 3,   // <iframe src>
    GREEN_HTML_FRAME = 4,    // <frame src>
    GREEN_HTML_BASE = 5,     // <base href>
};

enum {
    GREEN_HTML_REL_NOFOLLOW = 1,   // the link's rel has the token nofollow
};

typedef struct green_html_links {
    unsigned char *bytes;
    size_t count;
    size_t capacity;
    // <meta name=robots content=...> said nofollow (or none).
    int meta_nofollow;
    // An allocation failed: the records are incomplete.
    int out_of_memory;
} green_html_links;

static inline int green_html_links_reserve(green_html_links *l, size_t more) {
    if (l->capacity - l->count >= more) return 1;
    size_t capacity = l->capacity ? l->capacity : 4096;
    while (capacity - l->count < more) capacity *= 2;
    unsigned char *grown = (unsigned char *)realloc(l->bytes, capacity);
    if (grown == NULL) { l->out_of_memory = 1; return 0; }
    l->bytes = grown;
    l->capacity = capacity;
    return 1;
}

static inline void green_html_links_add(green_html_links *l, unsigned char kind, unsigned char flags,
                                        const xmlChar *value) {
    size_t length = strlen((const char *)value);
    if (length > UINT32_MAX || !green_html_links_reserve(l, 6 + length)) return;
    unsigned char *p = l->bytes + l->count;
    p[0] = kind;
    p[1] = flags;
    uint32_t n = (uint32_t)length;
    memcpy(p + 2, &n, 4);
    memcpy(p + 6, value, length);
    l->count += 6 + length;
}

// Whether the space-separated token list `list` holds `token` (ASCII
// case-insensitive, as HTML compares rel and robots keywords). Commas
// separate too: robots meta content is comma-separated.
static inline int green_html_has_token(const xmlChar *list, const char *token) {
    size_t want = strlen(token);
    const char *s = (const char *)list;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == ',') s++;
        const char *start = s;
        while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '\f' && *s != ',') s++;
        if ((size_t)(s - start) == want && strncasecmp(start, token, want) == 0) return 1;
    }
    return 0;
}

// libxml2's HTML parser gives element and attribute names in lower case.
static inline void green_html_start_element(void *context, const xmlChar *name, const xmlChar **attributes) {
    green_html_links *l = (green_html_links *)context;
    const char *n = (const char *)name;
    unsigned char kind;
    const char *wanted;
    switch (n[0]) {
    case 'a':
        if (n[1] == 0) { kind = GREEN_HTML_A; wanted = "href"; }
        else if (strcmp(n, "area") == 0) { kind = GREEN_HTML_AREA; wanted = "href"; }
        else return;
        break;
    case 'b':
        if (strcmp(n, "base") != 0) return;
        kind = GREEN_HTML_BASE; wanted = "href";
        break;
    case 'f':
        if (strcmp(n, "frame") != 0) return;
        kind = GREEN_HTML_FRAME; wanted = "src";
        break;
    case 'i':
        if (strcmp(n, "iframe") != 0) return;
        kind = GREEN_HTML_IFRAME; wanted = "src";
        break;
    case 'm':
        if (strcmp(n, "meta") == 0 && attributes != NULL) {
            const xmlChar *meta_name = NULL, *content = NULL;
            for (const xmlChar **a = attributes; a[0] != NULL; a += 2) {
                if (strcmp((const char *)a[0], "name") == 0) meta_name = a[1];
                else if (strcmp((const char *)a[0], "content") == 0) content = a[1];
            }
            if (meta_name != NULL && content != NULL && strcasecmp((const char *)meta_name, "robots") == 0
                && (green_html_has_token(content, "nofollow") || green_html_has_token(content, "none"))) {
                l->meta_nofollow = 1;
            }
        }
        return;
    default:
        return;
    }
    if (attributes == NULL) return;
    const xmlChar *value = NULL;
    unsigned char flags = 0;
    for (const xmlChar **a = attributes; a[0] != NULL; a += 2) {
        const char *attribute = (const char *)a[0];
        // The first of a repeated attribute counts, as in HTML5.
        if (value == NULL && a[1] != NULL && strcmp(attribute, wanted) == 0) value = a[1];
        else if (a[1] != NULL && strcmp(attribute, "rel") == 0 && green_html_has_token(a[1], "nofollow")) {
            flags |= GREEN_HTML_REL_NOFOLLOW;
        }
    }
    if (value != NULL) green_html_links_add(l, kind, flags, value);
}

// libxml2 reports what it recovers from through these; a crawler reads
// broken pages all day and says nothing about them.
static inline void green_html_quiet(void *context, const char *message, ...) {
    (void)context;
    (void)message;
}

// A push parser that reports to `links`, reading the document as
// `encoding` (an unknown name as UTF-8; bytes that are not UTF-8 in a
// UTF-8 document are read as ISO-8859-1). libxml2's own switch on a <meta charset> is off
// (HTML_PARSE_IGNORE_ENC): in 2.9's push parser it converts the bytes
// already buffered a second time, so the caller finds the charset first
// (the HTTP header, or a prescan of the document's start as browsers do).
// Returns NULL when out of memory.
static inline htmlParserCtxtPtr green_html_push_parser(green_html_links *links, const char *encoding) {
    htmlSAXHandler sax;
    memset(&sax, 0, sizeof sax);
    sax.startElement = green_html_start_element;
    sax.warning = green_html_quiet;
    sax.error = green_html_quiet;
    sax.fatalError = green_html_quiet;
    // htmlCreatePushParserCtxt copies the handler.
    htmlParserCtxtPtr ctxt = htmlCreatePushParserCtxt(&sax, links, NULL, 0, NULL, XML_CHAR_ENCODING_NONE);
    if (ctxt == NULL) return NULL;
    // Recover from anything, never touch the network; the error options
    // are not used, because they clear the quiet handlers above and let
    // libxml2 fall back to printing on stderr.
    htmlCtxtUseOptions(ctxt, HTML_PARSE_RECOVER | HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC);
    ctxt->sax->warning = green_html_quiet;
    ctxt->sax->error = green_html_quiet;
    ctxt->sax->fatalError = green_html_quiet;
    if (encoding != NULL) {
        // libxml2 asks iconv, then ICU, which hands out a converter even
        // for a name it does not know; a name iconv does not know is read
        // as UTF-8.
        iconv_t probe = iconv_open("UTF-8", encoding);
        if (probe == (iconv_t)-1) encoding = "UTF-8";
        else iconv_close(probe);
        xmlCharEncodingHandlerPtr handler = xmlFindCharEncodingHandler(encoding);
        if (handler != NULL) xmlSwitchToEncoding(ctxt, handler);
    }
    return ctxt;
}

// One chunk (terminate: the document ends; `bytes` may then be NULL).
static inline void green_html_push(htmlParserCtxtPtr ctxt, const char *bytes, int count, int terminate) {
    htmlParseChunk(ctxt, bytes, count, terminate);
}

// Whether the parser gave up before the end (out of memory, or a limit of
// libxml2's own such as a name or value over 10 MB): links after that
// point are missing.
static inline int green_html_halted(htmlParserCtxtPtr ctxt) {
    return ctxt->disableSAX != 0 || ctxt->instate == XML_PARSER_EOF;
}

// After the document ended: whether the parser stopped early on the way
// (the end itself leaves libxml2 in its EOF state either way).
static inline int green_html_stopped(htmlParserCtxtPtr ctxt) {
    return ctxt->disableSAX != 0;
}

// libxml2's message for the last error, or NULL.
static inline const char *green_html_last_error(htmlParserCtxtPtr ctxt) {
    return ctxt->lastError.message;
}

static inline void green_html_free(htmlParserCtxtPtr ctxt) {
    if (ctxt->myDoc != NULL) {
        xmlFreeDoc(ctxt->myDoc);
        ctxt->myDoc = NULL;
    }
    htmlFreeParserCtxt(ctxt);
}

#endif
