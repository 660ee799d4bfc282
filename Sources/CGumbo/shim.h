// Google's gumbo HTML5 parser from Debian (libgumbo-dev), for the
// crawler's link extraction.
#ifndef SWIFT_GREEN_CGUMBO_H
#define SWIFT_GREEN_CGUMBO_H

#include <gumbo.h>
#include <stdio.h>
#include <stdlib.h>

static inline const GumboOptions *green_gumbo_default_options(void) {
    return &kGumboDefaultOptions;
}

// A bump arena for one parse. gumbo makes many small allocations per
// document (a node, an attribute, a vector or a string buffer that grows by
// allocate-copy-free) and frees each again in gumbo_destroy_output; with
// this arena an allocation is a pointer bump, a free does nothing, and the
// whole tree goes in one green_gumbo_arena_release (no tree walk). Memory
// is at most about twice what the malloc'd tree would hold (grown buffers
// are not reused), so callers use it for documents of bounded size.
typedef struct green_gumbo_arena {
    char *chunk;       // the chunk being filled; its first 16 bytes link to the previous one
    size_t used;
    size_t size;
} green_gumbo_arena;

enum { GREEN_GUMBO_ARENA_CHUNK = 64 * 1024, GREEN_GUMBO_ARENA_HEADER = 16 };

static inline void *green_gumbo_arena_chunk(green_gumbo_arena *a, size_t size) {
    char *c = (char *)malloc(size);
    if (c == NULL) {
        // gumbo has no way to fail an allocation; neither has malloc's
        // default in Swift.
        fputs("swift-green: out of memory in the HTML parser's arena\n", stderr);
        abort();
    }
    *(char **)c = a->chunk;
    return c;
}

static inline void *green_gumbo_arena_allocate(void *userdata, size_t size) {
    green_gumbo_arena *a = (green_gumbo_arena *)userdata;
    size = (size + 15) & ~(size_t)15;
    if (a->chunk != NULL && a->size - a->used >= size) {
        void *p = a->chunk + a->used;
        a->used += size;
        return p;
    }
    if (size > GREEN_GUMBO_ARENA_CHUNK / 4 && a->chunk != NULL) {
        // A large block gets a chunk of its own, linked behind the
        // current one, which stays current.
        char *c = (char *)green_gumbo_arena_chunk(a, size + GREEN_GUMBO_ARENA_HEADER);
        *(char **)c = *(char **)a->chunk;
        *(char **)a->chunk = c;
        return c + GREEN_GUMBO_ARENA_HEADER;
    }
    size_t n = size + GREEN_GUMBO_ARENA_HEADER > GREEN_GUMBO_ARENA_CHUNK
        ? size + GREEN_GUMBO_ARENA_HEADER : GREEN_GUMBO_ARENA_CHUNK;
    a->chunk = (char *)green_gumbo_arena_chunk(a, n);
    a->size = n;
    a->used = GREEN_GUMBO_ARENA_HEADER + size;
    return a->chunk + GREEN_GUMBO_ARENA_HEADER;
}

static inline void green_gumbo_arena_deallocate(void *userdata, void *ptr) {
    (void)userdata;
    (void)ptr;
}

static inline void green_gumbo_arena_release(green_gumbo_arena *a) {
    char *c = a->chunk;
    while (c != NULL) {
        char *previous = *(char **)c;
        free(c);
        c = previous;
    }
    a->chunk = NULL;
    a->used = 0;
    a->size = 0;
}

// Parses `length` bytes into `arena` (release it when done with the tree;
// do not call gumbo_destroy_output). Parse errors are not recorded: the
// crawler never reads them, and recording costs an allocation each.
static inline GumboOutput *green_gumbo_parse_in_arena(const char *buffer, size_t length,
                                                      green_gumbo_arena *arena) {
    GumboOptions options = kGumboDefaultOptions;
    options.allocator = green_gumbo_arena_allocate;
    options.deallocator = green_gumbo_arena_deallocate;
    options.userdata = arena;
    options.max_errors = 0;
    return gumbo_parse_with_options(&options, buffer, length);
}

#endif
